"""Per-job claims never leave a claimable job waiting beside an idle worker: a replica that lost
the race for one job takes the next one, and a claim whose transaction failed is tried again
soon, not at the 30 s fallback (MAX_SLEEP_S). (Both failed when each claim was bound to the job
id the loop had listed, and a claim that came to nothing woke nothing.)

Each test runs one executor replica with one slot (its worker hooked only to pin an interleaving
that happens on its own with replicas), and the tickets service beside it (its own system, like
test_kill.py), so no other worker can take the jobs."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import asyncpg
import pytest

from libs.events.catalog.rules import JobStarted
from libs.events.runtime import Deps
from libs.events.settings import Settings
from libs.events.testing import eventually, isolated_system
from services.executor import handlers
from services.executor.app import SERVICE as EXECUTOR
from services.executor.handlers import JobCommands
from services.executor.worker import Worker
from services.tickets.app import SERVICE as TICKETS
from tests.executor.stack import Stack, seeded

PROMPT_S = 6.0
"""Well above a claim's latency, well below MAX_SLEEP_S (30 s)."""

Hook = Callable[[Worker], Awaitable[None]]


def executor_with(hook: Hook) -> Any:
    """The executor service whose worker calls `hook(worker)` before each claim."""

    async def run_hooked_worker(deps: Deps, stopping: asyncio.Event) -> None:
        worker = Worker(deps)
        real = worker.commands.claim_next

        async def claim(*args: Any, **kw: Any) -> Any:
            await hook(worker)
            return await real(*args, **kw)

        worker.commands.claim_next = claim  # type: ignore[method-assign]
        await worker.run(deps, stopping)

    return dataclasses.replace(EXECUTOR, background=[run_hooked_worker])


@pytest.fixture
def one_slot(settings: Settings) -> Settings:
    return settings.model_copy(
        update={
            "executor_concurrency": 1,
            "executor_action_timeout_s": 30.0,  # leases far longer than the test
            "executor_lease_grace_s": 5.0,
            "outbound_allow": "127.0.0.1",
        }
    )


@pytest.fixture
async def tickets(one_slot: Settings, database_url: str, nats_url: str) -> AsyncIterator[Stack]:
    system = isolated_system(one_slot, database_url, nats_url, services=(TICKETS,), timers=True)
    async with system as deps:
        yield await seeded(deps)


async def state_of(stack: Stack, job_id: str) -> tuple[str, bool] | None:
    row = await stack.deps.pool.fetchrow(
        "SELECT state, claimable FROM executor.jobs WHERE job_id = $1", job_id
    )
    return None if row is None else (row["state"], row["claimable"])


async def test_a_replica_that_lost_the_race_for_one_job_still_takes_the_next_one(
    tickets: Stack, one_slot: Settings, database_url: str, nats_url: str
) -> None:
    """Two replicas hear the same NOTIFY and both go for job A; the other replica claims A
    first. Job B (claimable since before, its NOTIFY heard while this replica's one slot was
    taken by its claim) must not wait for the 30 s fallback while this replica is idle: its
    claim passes over A and takes B."""
    stack = tickets
    key = await stack.ticket()
    jobs: dict[str, str] = {}
    raced = asyncio.Event()

    async def other_replica_first(worker: Worker) -> None:
        if "a" not in jobs or raced.is_set():
            return
        raced.set()
        # B became claimable (its NOTIFY reached this worker while its one slot was taken)
        await eventually(lambda: state_of(stack, jobs["b"]), until=lambda s: s == ("queued", True))
        await asyncio.sleep(0.3)
        # ...and another replica, woken by the same NOTIFY as this one, claimed A first
        other = await JobCommands(worker.deps).claim_next(worker="other-replica")
        assert other is not None and other.job.id == jobs["a"]

    system = isolated_system(
        one_slot, database_url, nats_url, services=(executor_with(other_replica_first),),
        replica="r2",
    )  # fmt: skip
    async with system:
        jobs["a"] = await stack.queue([{"type": "add_tag", "params": {"tag": "a"}}], ticket=key)
        jobs["b"] = await stack.queue([{"type": "add_tag", "params": {"tag": "b"}}], ticket=key)
        await asyncio.wait_for(raced.wait(), 10)
        # the other replica is busy with A for as long as its lease lasts; this one is idle
        taken = await eventually(
            lambda: state_of(stack, jobs["b"]),
            until=lambda s: s is not None and s[0] != "queued",
            timeout=PROMPT_S,
        )
    assert taken is not None


async def test_a_claim_whose_transaction_failed_midway_is_tried_again_promptly(
    tickets: Stack, one_slot: Settings, database_url: str, nats_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """The claim's transaction fails after its append (as a dropped connection or a deadlock
    would). It rolls back and the job stays claimable with no new NOTIFY; the worker must try
    again soon (CLAIM_RETRY_S), not at the 30 s fallback."""
    stack = tickets
    key = await stack.ticket()
    jobs: dict[str, str] = {}
    real_append = handlers.append_and_project  # type: ignore[attr-defined]
    failed = asyncio.Event()

    async def flaky_append(*args: Any, **kwargs: Any) -> Any:
        written = await real_append(*args, **kwargs)
        claim_of_a = args[3] == f"job-{jobs.get('a')}" and isinstance(args[4][0], JobStarted)
        if claim_of_a and not failed.is_set():
            failed.set()
            raise asyncpg.exceptions.DeadlockDetectedError("deadlock detected (test)")
        return written

    monkeypatch.setattr(handlers, "append_and_project", flaky_append)

    async def nothing(worker: Worker) -> None:
        return None

    system = isolated_system(
        one_slot, database_url, nats_url, services=(executor_with(nothing),), replica="r2"
    )
    async with system:
        jobs["a"] = await stack.queue([{"type": "add_tag", "params": {"tag": "a"}}], ticket=key)
        await asyncio.wait_for(failed.wait(), 10)
        done = await eventually(
            lambda: state_of(stack, jobs["a"]),
            until=lambda s: s is not None and s[0] == "succeeded",
            timeout=PROMPT_S,
        )
    assert done is not None
