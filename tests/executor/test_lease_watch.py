"""The lease watch by the database's clock, and without a busy loop: a lease the database says
has ended is expired whatever this host's clock says (the watch picks rows by the database's
clock, so a decision by the host's refused them and the watch kept finding them); and a lease
the decision refuses (a row the projection has not caught up on) is looked at once a pass, a
full batch of them included, never in a loop.

The executor runs here without its background tasks (no worker, no watch) so the test drives the
watch itself."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from libs.events.catalog.rules import JobStarted
from libs.events.envelope import Actor, Metadata
from libs.events.settings import Settings
from libs.events.testing import eventually, isolated_system
from services.executor import domain, handlers, leases
from services.executor.app import SERVICE as EXECUTOR
from services.executor.handlers import JobCommands
from services.tickets.app import SERVICE as TICKETS
from tests.executor.jobs import firing, queued
from tests.executor.stack import Stack, seeded

SKEW = timedelta(seconds=30)
"""This host's clock behind the database's (NTP off on a VM, a DB on another host)."""
NEVER: list[object] = []
META = Metadata(actor=Actor.service("executor"), service="executor")
QUIET = dataclasses.replace(EXECUTOR, background=[])


class _Behind(datetime):
    @classmethod
    def now(cls, tz: Any = None) -> Any:
        return datetime.now(tz) - SKEW


@pytest.fixture
async def quiet(settings: Settings, database_url: str, nats_url: str) -> AsyncIterator[Stack]:
    system = isolated_system(settings, database_url, nats_url, services=(TICKETS, QUIET))
    async with system as deps:
        yield await seeded(deps)


async def _running_with_ended_lease(stack: Stack, key: str, count: int) -> list[str]:
    """`count` jobs claimed by a worker that went away, their leases ended a second ago."""
    ended = datetime.now(UTC) - timedelta(seconds=1)
    ids = []
    for _ in range(count):
        events = firing([{"type": "add_tag", "params": {"tag": "x"}}], ticket=key)
        job_id = queued(events).job_id
        gone = JobStarted(attempt=1, worker="dead-worker", lease_until=ended)
        await stack.deps.store.append(
            f"job-{job_id}", [*events, gone], expected_version=0, metadata=META
        )
        ids.append(job_id)

    async def projected() -> int:
        return int(
            await stack.deps.pool.fetchval(
                "SELECT count(*) FROM executor.jobs WHERE lease_until IS NOT NULL"
            )
        )

    await eventually(projected, until=lambda n: n == count, timeout=30)
    return ids


def _count_expire_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []
    real = JobCommands.expire_lease

    async def counted(self: JobCommands, job_id: str) -> bool:
        calls.append(job_id)
        return await real(self, job_id)

    monkeypatch.setattr(JobCommands, "expire_lease", counted)
    return calls


async def test_a_lease_ended_by_the_database_clock_is_expired_with_the_host_clock_behind(
    quiet: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(handlers, "datetime", _Behind)
    key = await quiet.ticket()
    [job_id] = await _running_with_ended_lease(quiet, key, 1)
    assert await leases.expire_ended_leases(JobCommands(quiet.deps)) == 1
    job = await quiet.job(job_id)
    assert [h["type"] for h in job["history"]][-1] == "job.lease_expired"


def _refuse_every_lease(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every lease decision says no (as for a row the projection has not caught up on)."""
    calls: list[str] = []

    def refuse(job: Any, **_: Any) -> list[object]:
        calls.append(job.id)
        return NEVER

    monkeypatch.setattr(domain, "decide_lease_expired", refuse)
    return calls


async def test_a_refused_lease_does_not_make_the_watch_spin(
    quiet: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = await quiet.ticket()
    await _running_with_ended_lease(quiet, key, 1)
    calls = _refuse_every_lease(monkeypatch)
    stopping = asyncio.Event()
    task = asyncio.create_task(leases.watch_leases(quiet.deps, stopping))
    await asyncio.sleep(2.0)
    stopping.set()
    await asyncio.wait_for(task, 5)
    # CHECK_S is 1 s: a watch that sleeps as documented looks at it two or three times
    assert 1 <= len(calls) <= 5, f"the watch tried one refused lease {len(calls)} times in 2 s"


async def test_a_full_batch_of_refused_leases_is_one_pass(
    quiet: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = await quiet.ticket()
    ids = await _running_with_ended_lease(quiet, key, leases.BATCH + 5)
    calls = _refuse_every_lease(monkeypatch)
    task = asyncio.create_task(leases.expire_ended_leases(JobCommands(quiet.deps)))
    done, _ = await asyncio.wait([task], timeout=10.0)
    if not done:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert done, f"one pass had not ended after 10 s ({len(calls)} decisions)"
    assert task.result() == 0 and sorted(calls) == sorted(ids)  # each looked at once
