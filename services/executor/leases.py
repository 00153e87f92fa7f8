"""The lease watch: hands the jobs of an executor that went away back to the workers.

A claim records its lease on `job.started` (time for the steps left, plus a grace), and the
jobs projection keeps it in `executor.jobs.lease_until` while the job runs. Every replica
watches that column under the supervisor: at the earliest lease's end (at most every
CHECK_S), each lease that has ended gets `job.lease_expired`, appended at the stream's version
so of several replicas watching one wins. The job is then claimable again and its NOTIFY wakes
the workers. A lease is only a fallback (a live worker records its steps long before), so a
watch of one indexed query a second per replica replaces a durable timer scheduled and
cancelled on every attempt of every job."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Final

from libs.events.runtime import Deps
from services.executor.handlers import JobCommands

log = logging.getLogger(__name__)

CHECK_S: Final = 1.0
"""The longest the watch sleeps: a lease taken meanwhile may end before the one it waits for."""
BATCH: Final = 100


async def expire_ended_leases(commands: JobCommands) -> int:
    """Expire every lease that has ended; how many this replica expired."""
    expired = 0
    while True:
        rows = await commands.deps.pool.fetch(
            "SELECT job_id FROM executor.jobs WHERE lease_until <= clock_timestamp() "
            "ORDER BY lease_until LIMIT $1",
            BATCH,
        )
        for row in rows:
            if await commands.expire_lease(row["job_id"]):
                log.warning("job %s: its lease ended; it is claimable again", row["job_id"])
                expired += 1
        if len(rows) < BATCH:
            return expired


async def watch_leases(deps: Deps, stopping: asyncio.Event) -> None:
    """The executor's lease watch (one per replica, under the supervisor)."""
    commands = JobCommands(deps)
    while not stopping.is_set():
        await expire_ended_leases(commands)
        ends_in = await deps.pool.fetchval(
            "SELECT extract(epoch FROM min(lease_until) - clock_timestamp())::float8 "
            "FROM executor.jobs WHERE lease_until IS NOT NULL"
        )
        delay = CHECK_S if ends_in is None else min(CHECK_S, max(0.01, float(ends_in)))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), delay)
