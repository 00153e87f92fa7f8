"""`opsledger dev --processes`: each service in its own `opsledger run SERVICE` process on dev's
embedded servers, as Compose runs them. A ticket driven through two replicas of tickets (in two
processes) has each of its events handled once, and nothing is parked."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import nats
import pytest

from libs.events.cli import SERVICE_MODULES
from libs.events.embedded import LOCALHOST, free_port
from libs.events.settings import Settings
from tests.test_dev_stack_cli import (
    ROOT,
    Dev,
    alive,
    clean_env,
    kill_leftovers,
    opsledger,
    servers_using,
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path("/proc/self").exists(), reason="uses /proc"),
]

PASSWORD = "correct horse battery"


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "data"
    yield path
    kill_leftovers(path)


def children_of(pid: int) -> dict[int, str]:
    """The live child processes of `pid`, with their command lines."""
    found: dict[int, str] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
            cmdline = (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            found[int(stat.parent.name)] = cmdline.strip()
    return found


def run_children(dev: Dev) -> dict[str, int]:
    """service -> pid of dev's `opsledger run SERVICE` children."""
    marker = "libs.events.cli run "
    return {
        cmd.split(marker, 1)[1].split()[0]: pid
        for pid, cmd in children_of(dev.proc.pid).items()
        if marker in cmd
    }


def start_replica(env: dict[str, str], service: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "libs.events.cli", "run", service, "--no-relay", "--no-timers"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    seen = []
    for line in proc.stdout:
        seen.append(line)
        if f"running: {service}" in line:
            return proc
    raise AssertionError("the replica did not start:\n" + "".join(seen))


def stop_replica(proc: subprocess.Popen[str]) -> int:
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=30)
    return proc.returncode


def eventually(check: Any, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.2)


async def consumer_deliveries(nats_url: str) -> dict[str, tuple[int, int, int]]:
    """Per durable consumer on the events stream: (deliveries made, deliveries acked, messages
    its filter matches). A redelivery makes the first exceed the third."""
    stream = Settings(namespace="opsledger").stream_name
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        found = {}
        for info in await js.consumers_info(stream):
            subject = info.config.filter_subject or ">"
            matching = await js.stream_info(stream, subjects_filter=subject)
            messages = sum((matching.state.subjects or {}).values())
            assert info.delivered is not None and info.ack_floor is not None
            found[info.name] = (
                info.delivered.consumer_seq,
                info.ack_floor.consumer_seq,
                messages,
            )
        return found
    finally:
        await nc.close()


def drive_a_ticket(base: str) -> tuple[str, list[str]]:
    """Register, sign in and take one ticket through its life; (its key, the events expected)."""
    with httpx.Client(base_url=f"{base}/api/v1", timeout=30) as client:
        account = {"email": "ada@example.com", "name": "Ada", "password": PASSWORD}
        assert client.post("/auth/register", json=account).status_code == 201
        login = {"email": "ada@example.com", "password": PASSWORD}
        assert client.post("/auth/login", json=login).status_code == 200
        body = {"type": "incident", "title": "Checkout is down", "fields": {"service": "checkout"}}
        created = client.post("/tickets", json=body)
        assert created.status_code == 201, created.text
        key = created.json()["key"]
        steps: list[tuple[str, dict[str, Any], str]] = [
            ("comments", {"body": "Looking into it."}, "ticket.commented"),
            ("status", {"status": "in_progress"}, "ticket.status_changed"),
            ("tags", {"tag": "payments"}, "ticket.tagged"),
            ("priority", {"priority": "high"}, "ticket.priority_changed"),
            ("comments", {"body": "Rolled back."}, "ticket.commented"),
            ("status", {"status": "resolved"}, "ticket.status_changed"),
        ]
        for path, step, _ in steps:
            answer = client.post(f"/tickets/{key}/{path}", json=step)
            assert answer.status_code in (200, 201), (path, answer.text)
        return key, ["ticket.created", *(event for _, _, event in steps)]


def test_each_service_runs_in_its_own_process_and_two_replicas_handle_each_event_once(
    data_dir: Path,
) -> None:
    env = clean_env(data_dir)
    port = free_port()
    base = f"http://{LOCALHOST}:{port}"
    dev = Dev(env, "--processes", "--port", str(port))
    try:
        dev.wait_running()
        services = run_children(dev)
        assert sorted(services) == sorted(SERVICE_MODULES), children_of(dev.proc.pid)
        assert httpx.get(f"{base}/readyz").status_code == 200

        replica = start_replica(env, "tickets")  # a second tickets, in a process of its own
        try:
            assert replica.pid not in services.values()
            key, expected = drive_a_ticket(base)

            with httpx.Client(base_url=f"{base}/api/v1", timeout=30) as client:
                login = {"email": "ada@example.com", "password": PASSWORD}
                assert client.post("/auth/login", json=login).status_code == 200
                trail = client.get(f"/tickets/{key}/events").json()["items"]
                assert [e["type"] for e in trail] == expected
                assert [e["version"] for e in trail] == list(range(1, len(expected) + 1))
                ticket = client.get(f"/tickets/{key}").json()
                assert ticket["version"] == len(expected)
                assert ticket["status"] == "resolved" and ticket["tags"] == ["payments"]
                comments = client.get(f"/tickets/{key}/comments").json()["items"]
                assert [c["body"] for c in comments] == ["Looking into it.", "Rolled back."]

            nats_url = json.loads((data_dir / "dev-stack.json").read_text())["nats_url"]

            def settled() -> dict[str, tuple[int, int, int]] | None:
                found = asyncio.run(consumer_deliveries(nats_url))
                done = all(acked == delivered for delivered, acked, _ in found.values())
                return found if found and done else None

            deliveries = eventually(settled)
            assert deliveries, "the consumers did not settle"
            for name, (delivered, _, matching) in deliveries.items():
                assert delivered == matching, f"{name}: {delivered} deliveries of {matching}"
            assert any(delivered for delivered, _, _ in deliveries.values())

            parked = opsledger(env, "parked", "list")
            assert parked.returncode == 0, parked.stderr
            assert parked.stdout == "No events are parked for any consumer.\n"
        finally:
            assert stop_replica(replica) == 0
        assert dev.stop() == 0, dev.output
    finally:
        if dev.proc.poll() is None:
            dev.proc.kill()
    assert servers_using(data_dir) == []
    assert not any(alive(pid) for pid in services.values()), "a service process outlived dev"


def test_dev_stops_non_zero_when_a_service_process_dies(data_dir: Path) -> None:
    env = clean_env(data_dir)
    port = free_port()
    dev = Dev(env, "--processes", "--port", str(port))
    try:
        dev.wait_running()
        services = run_children(dev)
        os.kill(services["tickets"], signal.SIGKILL)
        code = dev.wait_exit(timeout=60)
    finally:
        if dev.proc.poll() is None:
            dev.proc.kill()
    assert code == 1, dev.output
    assert dev.lines[-1] == (
        "Error: the tickets process was killed by signal 9, so `opsledger dev` stopped\n"
    ), dev.output
    assert not alive(services["gateway"]), "the gateway process outlived dev"
    assert servers_using(data_dir) == []
