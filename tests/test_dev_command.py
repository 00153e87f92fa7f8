"""`opsledger dev` as a user runs it: embedded servers on free ports, data that survives a
restart, and Ctrl-C leaving no server behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from libs.events.embedded import free_port

pytestmark = pytest.mark.slow


def _children_of(pid: int) -> set[int]:
    found: set[int] = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.add(int(stat.parent.name))
    return found


def _servers_using(data_dir: Path) -> list[int]:
    pids = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            text = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if str(data_dir) in text and ("nats-server" in text or "postgres" in text):
            pids.append(int(cmdline.parent.name))
    return pids


@pytest.fixture
def dev_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPSLEDGER_")}
    env["OPSLEDGER_DATA_DIR"] = str(tmp_path / "data")
    yield env
    for pid in _servers_using(tmp_path / "data"):  # never leave a server behind, even on failure
        os.kill(pid, signal.SIGKILL)


def _start(env: dict[str, str], port: int) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "libs.events.cli", "dev", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + 90
    assert proc.stdout is not None
    for line in proc.stdout:
        if "OpsLedger is running at" in line:
            return proc
        if time.monotonic() > deadline:
            break
    proc.kill()
    raise AssertionError("opsledger dev did not print its URL")


def _stop(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=30)


def test_dev_runs_on_embedded_servers_keeps_data_and_stops_cleanly(
    dev_env: dict[str, str],
) -> None:
    data_dir = Path(dev_env["OPSLEDGER_DATA_DIR"])
    port = free_port()
    proc = _start(dev_env, port)
    base = f"http://127.0.0.1:{port}"
    try:
        assert httpx.get(f"{base}/readyz").status_code == 200
        assert _servers_using(data_dir), "embedded servers should run under the data dir"
        created = httpx.post(
            f"{base}/api/v1/auth/register",
            json={"email": "ada@example.com", "name": "Ada", "password": "correct horse"},
        )
        assert created.status_code == 201, created.text
    finally:
        _stop(proc)
    assert proc.returncode == 0
    assert _servers_using(data_dir) == []
    assert not _children_of(proc.pid)

    port = free_port()
    proc = _start(dev_env, port)
    try:
        login = httpx.post(
            f"http://127.0.0.1:{port}/api/v1/auth/login",
            json={"email": "ada@example.com", "password": "correct horse"},
        )
        assert login.status_code == 200, login.text
        assert login.json()["role"] == "admin"
    finally:
        _stop(proc)
    assert _servers_using(data_dir) == []
