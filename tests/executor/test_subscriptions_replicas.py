"""Event subscriptions on several executors: two replicas share the work and deliver each event
once per delivery id, in order per stream; an executor PROCESS killed with -9 mid-POST loses
nothing and reorders nothing (another replica re-sends that delivery, with the same id, once its
claim's lease ends)."""

from __future__ import annotations

import asyncio
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
from tests.executor.stack import Stack, seeded
from tests.executor.subscribers import (
    DELIVERY,
    all_delivered,
    assert_each_event_once,
    assert_each_event_through_a_crash,
    assert_in_order_per_stream,
    busy_tickets,
    got,
    subscribe,
    ticket_events,
)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def fast(settings: Settings) -> Settings:
    return settings.model_copy(update=DELIVERY)


async def test_two_replicas_deliver_each_event_once_in_order_per_stream(
    stack: Stack, fast: Settings, database_url: str, nats_url: str, receiver: Receiver
) -> None:
    receiver.delay_s = 0.05  # slow enough that both replicas take lanes
    one_at_a_time = fast.model_copy(update={"delivery_concurrency": 1})
    second = isolated_system(one_at_a_time, database_url, nats_url, services=(EXECUTOR,),
                             replica="r2")  # fmt: skip
    async with second:
        hook = await subscribe(stack, receiver.url, ["ticket.*"])
        keys = await busy_tickets(stack, 6)
        expected = await ticket_events(stack, keys)
        await all_delivered(stack, hook, len(expected))
    received = got(receiver)
    assert all(g.status == 200 for g in received)
    assert len(received) == len(expected)  # no event sent twice, not even with the same id
    assert_each_event_once(received, expected)
    assert_in_order_per_stream(received)
    senders = await stack.deps.pool.fetch("SELECT DISTINCT sender FROM executor.deliveries")
    assert len(senders) >= 2, senders
    rows = await stack.deps.pool.fetchval(
        "SELECT count(*) FROM executor.deliveries WHERE webhook_id = $1", hook
    )
    assert rows == len(expected)  # both fan-outs ran; each event was matched once


def start_executor(
    settings: Settings, database_url: str, nats_url: str, log: Path
) -> subprocess.Popen[bytes]:
    """`opsledger run executor` as its own process, with the test's delivery timeout and grace."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPSLEDGER_")}
    env.update(
        OPSLEDGER_DATABASE_URL=database_url,
        OPSLEDGER_NATS_URL=nats_url,
        OPSLEDGER_NAMESPACE=settings.namespace,
        OPSLEDGER_DATA_DIR=str(log.parent / "proc"),
        OPSLEDGER_DELIVERY_TIMEOUT_S=str(settings.delivery_timeout_s),
        OPSLEDGER_EXECUTOR_LEASE_GRACE_S=str(settings.executor_lease_grace_s),
        OPSLEDGER_OUTBOUND_ALLOW="127.0.0.1",
    )
    command = [sys.executable, "-m", "libs.events.cli", "run", "executor", "--no-relay",
               "--no-timers"]  # fmt: skip
    with log.open("wb") as out:
        proc = subprocess.Popen(command, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while "running: executor" not in log.read_text(errors="replace"):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise AssertionError("the executor did not start:\n" + log.read_text(errors="replace"))
        time.sleep(0.1)
    return proc


@pytest.mark.slow
async def test_kill_9_mid_delivery_loses_nothing_and_reorders_nothing(
    fast: Settings, database_url: str, nats_url: str, tmp_path: Path
) -> None:
    receiver = await Receiver(hold_first=True).start()
    tickets = isolated_system(fast, database_url, nats_url, services=(TICKETS,), replica="t")
    proc: subprocess.Popen[bytes] | None = None
    try:
        async with tickets as deps:
            stack = await seeded(deps)
            proc = start_executor(fast, database_url, nats_url, tmp_path / "executor.log")
            hook = await subscribe(stack, receiver.url, ["ticket.*"])
            keys = await busy_tickets(stack, 2)
            expected = await ticket_events(stack, keys)

            async def mid_post() -> int:
                return len(receiver.received)

            await eventually(mid_post, timeout=20)
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
            proc = None
            await asyncio.sleep(0.3)  # whatever it had written reaches the receiver first
            cut = len(receiver.received)  # what the killed process sent
            async with isolated_system(fast, database_url, nats_url, services=(EXECUTOR,),
                                       replica="r2"):  # fmt: skip
                listed = await all_delivered(stack, hook, len(expected))
    finally:
        if proc is not None:
            proc.kill()
            proc.wait(timeout=10)
        await receiver.stop()
    received = got(receiver)
    held, *rest = received
    assert held.status == 0  # the POST the killed process was making, never answered
    assert_each_event_through_a_crash(received[:cut], received[cut:], expected)
    again = next(g for g in rest if g.event.id == held.event.id)
    assert again.delivery_id == held.delivery_id and again.status == 200
    assert next(d for d in listed if d["id"] == held.delivery_id)["attempts"] == 2
