"""kill -9 of an executor PROCESS mid-job: another replica takes the job over once its lease
expires, resumes at the first step not done, and the job ends `succeeded` with each effect
applied once (the ticket tagged once; the webhook re-sent with the same Idempotency-Key)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from libs.events.settings import Settings
from libs.events.testing import eventually, isolated_system
from services.executor.app import SERVICE as EXECUTOR
from services.tickets.app import SERVICE as TICKETS
from tests.executor.receiver import Receiver
from tests.executor.stack import Stack
from tests.tickets.support import PEOPLE, register

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


def start_executor(
    settings: Settings, database_url: str, nats_url: str, log: Path
) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPSLEDGER_")}
    env.update(
        OPSLEDGER_DATABASE_URL=database_url,
        OPSLEDGER_NATS_URL=nats_url,
        OPSLEDGER_NAMESPACE=settings.namespace,
        OPSLEDGER_DATA_DIR=str(log.parent / "proc"),
        OPSLEDGER_EXECUTOR_ACTION_TIMEOUT_S=str(settings.executor_action_timeout_s),
        OPSLEDGER_EXECUTOR_LEASE_GRACE_S=str(settings.executor_lease_grace_s),
        OPSLEDGER_OUTBOUND_ALLOW="127.0.0.1",
    )
    command = [
        sys.executable,
        "-m",
        "libs.events.cli",
        "run",
        "executor",
        "--no-relay",
        "--no-timers",
    ]
    with log.open("wb") as out:
        proc = subprocess.Popen(command, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while "running: executor" not in log.read_text(errors="replace"):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise AssertionError("the executor did not start:\n" + log.read_text(errors="replace"))
        time.sleep(0.1)
    return proc


async def test_kill_9_mid_job_ends_succeeded_with_each_effect_once(
    fast: Settings, database_url: str, nats_url: str, tmp_path: Path
) -> None:
    fast = fast.model_copy(update={"executor_action_timeout_s": 2.0, "executor_lease_grace_s": 0.5})
    receiver = await Receiver(hold_first=True).start()
    tickets = isolated_system(fast, database_url, nats_url, services=(TICKETS,), timers=True)
    proc: subprocess.Popen[bytes] | None = None
    try:
        async with tickets as deps:
            for who, role in PEOPLE.items():
                await register(deps, who, role)
            stack = Stack(deps)
            await eventually(lambda: deps.pool.fetchval("SELECT count(*) FROM tickets.people"),
                             until=lambda n: n == len(PEOPLE))  # fmt: skip
            proc = start_executor(fast, database_url, nats_url, tmp_path / "executor.log")
            webhook_id = await stack.webhook(receiver.url)
            key = await stack.ticket()
            actions = [
                {"type": "add_tag", "params": {"tag": "once"}},
                {"type": "webhook", "params": {"webhook_id": webhook_id}},
            ]
            job_id = await stack.queue(actions, ticket=key)

            async def mid_webhook() -> int:
                return len(receiver.received)

            await eventually(mid_webhook, timeout=20)
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
            proc = None

            async with isolated_system(
                fast, database_url, nats_url, services=(EXECUTOR,), replica="r2"
            ):
                job = await stack.settled(job_id, timeout=30)
            assert job["state"] == "succeeded" and job["attempts"] == 2
            types = [h["type"] for h in job["history"]]
            assert types == [
                "job.queued", "job.started", "job.step_succeeded", "job.lease_expired",
                "job.started", "job.step_succeeded", "job.succeeded",
            ]  # fmt: skip
            assert [h["step"] for h in job["history"] if h["type"] == "job.step_succeeded"] == [
                0,
                1,
            ]
            assert (await stack.ticket_events(key)).count("ticket.tagged") == 1
            assert len(receiver.received) == 2
            assert {r.headers["idempotency-key"] for r in receiver.received} == {job_id}
    finally:
        if proc is not None:
            proc.kill()
            proc.wait(timeout=10)
        await receiver.stop()
