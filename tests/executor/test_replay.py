"""Replay equals live: the executor's read model rebuilt from the log (`opsledger replay
executor`) holds the same jobs and webhooks as the live one, and runs nothing again."""

from __future__ import annotations

from typing import Any

from libs.events.replay import replay_service
from services.executor.app import SERVICE as EXECUTOR
from tests.executor.receiver import Receiver
from tests.executor.stack import Stack


async def snapshot(stack: Stack) -> tuple[list[Any], list[Any]]:
    jobs = await stack.deps.pool.fetch("SELECT * FROM executor.jobs ORDER BY job_id")
    hooks = await stack.deps.pool.fetch("SELECT * FROM executor.webhooks ORDER BY webhook_id")
    return [dict(r) for r in jobs], [dict(r) for r in hooks]


async def test_the_rebuilt_read_model_equals_the_live_one(stack: Stack, receiver: Receiver) -> None:
    receiver.statuses = [500, 200]
    key = await stack.ticket()
    webhook_id = await stack.webhook(receiver.url)
    jobs = [
        await stack.queue([{"type": "add_tag", "params": {"tag": "a"}}], ticket=key),
        await stack.queue([{"type": "webhook", "params": {"webhook_id": webhook_id}}], ticket=key),
        await stack.queue([{"type": "set_status", "params": {"status": "open"}}], ticket=key),
        await stack.queue([{"type": "add_tag", "params": {"tag": "b"}}], ticket=key, mode="shadow"),
    ]
    for job in jobs:
        await stack.settled(job)
    live = await snapshot(stack)
    sent = len(receiver.received)
    assert await replay_service(EXECUTOR, stack.deps) > 0
    assert await snapshot(stack) == live
    assert len(receiver.received) == sent
    assert [(await stack.job(j))["state"] for j in jobs] == [
        "succeeded", "succeeded", "dead_lettered", "skipped",
    ]  # fmt: skip
