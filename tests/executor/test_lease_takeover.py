"""Lease takeovers: a live worker whose lease ends between running a step and recording it (a
slow database, a paused process) records nothing once the watch expired its lease; the next attempt
repeats the step with the same idempotency key, so the ticket is changed once. Also: a job that
was running under the old scheme (lease_until NULL after 0002_leases, its lease timer pending)
is still handed back, by that timer, once."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from libs.events.catalog.rules import JobLeaseExpired, JobStarted
from libs.events.envelope import Actor, Metadata
from libs.events.testing import eventually
from libs.events.timers import schedule
from services.executor.domain import LeaseLost
from services.executor.handlers import Claim, JobCommands
from tests.executor.jobs import firing, queued
from tests.executor.stack import Stack

META = Metadata(actor=Actor.service("executor"), service="executor")


async def test_a_slow_worker_whose_lease_ended_records_nothing_and_the_step_applies_once(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = JobCommands.step_done
    outcomes: list[tuple[int, str]] = []

    async def slow_first_attempt(self: JobCommands, claim: Claim, step: int, result: Any) -> Any:
        if claim.attempt == 1:
            await asyncio.sleep(5.5)  # the lease (3 s per step + 1 s grace) ends meanwhile
        try:
            job = await real(self, claim, step, result)
        except LeaseLost:
            outcomes.append((claim.attempt, "lease lost"))
            raise
        outcomes.append((claim.attempt, "recorded"))
        return job

    monkeypatch.setattr(JobCommands, "step_done", slow_first_attempt)
    key = await stack.ticket()
    job_id = await stack.queue([{"type": "add_tag", "params": {"tag": "once"}}], ticket=key)
    job = await stack.settled(job_id, timeout=30)
    assert job["state"] == "succeeded" and job["attempts"] == 2
    types = [h["type"] for h in job["history"]]
    assert types.count("job.lease_expired") == 1 and types.count("job.step_succeeded") == 1
    await eventually(lambda: asyncio.sleep(0, outcomes), until=lambda o: len(o) == 2, timeout=10)
    assert sorted(outcomes) == [(1, "lease lost"), (2, "recorded")]
    assert await stack.ticket_events(key) == ["ticket.created", "ticket.tagged"]


async def test_a_job_running_under_the_old_lease_timer_is_handed_back_once(stack: Stack) -> None:
    key = await stack.ticket()
    events = firing([{"type": "add_tag", "params": {"tag": "old"}}], ticket=key)
    job_id = queued(events).job_id
    until = datetime.now(UTC) + timedelta(seconds=2)
    started = JobStarted(attempt=1, worker="old-executor", lease_until=until)
    stream = f"job-{job_id}"
    async with stack.deps.store.transaction() as conn:
        await stack.deps.store.append(
            stream, [*events, started], expected_version=0, metadata=META, conn=conn
        )
        await schedule(
            stack.deps.store, conn, due_at=until, target_stream=stream,
            event=JobLeaseExpired(attempt=1, worker="old-executor"), metadata=META,
        )  # fmt: skip

    async def row() -> Any:
        return await stack.deps.pool.fetchrow(
            "SELECT state, lease_until FROM executor.jobs WHERE job_id = $1", job_id
        )

    await eventually(row, until=lambda r: r is not None and r["state"] == "running")
    # as 0002_leases leaves a row that was running: no lease_until, only the old timer
    await stack.deps.pool.execute(
        "UPDATE executor.jobs SET lease_until = NULL WHERE job_id = $1", job_id
    )
    job = await stack.settled(job_id, timeout=30)
    assert job["state"] == "succeeded" and job["attempts"] == 2
    types = [h["type"] for h in job["history"]]
    assert types.count("job.lease_expired") == 1
    assert await stack.ticket_events(key) == ["ticket.created", "ticket.tagged"]
