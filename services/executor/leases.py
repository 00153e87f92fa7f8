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
from datetime import datetime
from typing import Final

from libs.events.runtime import Deps
from services.executor.handlers import JobCommands

log = logging.getLogger(__name__)

CHECK_S: Final = 1.0
"""The longest the watch sleeps: a lease taken meanwhile may end before the one it waits for."""
MIN_SLEEP_S: Final = 0.05
BATCH: Final = 100


async def expire_ended_leases(commands: JobCommands) -> int:
    """One pass over the leases that have ended, each looked at once (a lease the decision
    refuses, e.g. a row the projection has not caught up on, is looked at again next pass, not
    in a loop); returns how many this replica expired."""
    expired = 0
    after: tuple[datetime, str] | None = None
    while True:
        rows = await commands.deps.pool.fetch(
            "SELECT job_id, lease_until FROM executor.jobs "
            "WHERE lease_until <= clock_timestamp() "
            "AND ($1::timestamptz IS NULL OR (lease_until, job_id) > ($1, $2)) "
            "ORDER BY lease_until, job_id LIMIT $3",
            after[0] if after else None,
            after[1] if after else None,
            BATCH,
        )
        for row in rows:
            if await commands.expire_lease(row["job_id"]):
                log.warning("job %s: its lease ended; it is claimable again", row["job_id"])
                expired += 1
        if len(rows) < BATCH:
            return expired
        after = (rows[-1]["lease_until"], rows[-1]["job_id"])


async def watch_leases(deps: Deps, stopping: asyncio.Event) -> None:
    """The executor's lease watch (one per replica, under the supervisor): a pass, then sleep
    until the next lease still running ends (CHECK_S at most, MIN_SLEEP_S at least, so a lease
    that was refused never makes it spin)."""
    commands = JobCommands(deps)
    while not stopping.is_set():
        await expire_ended_leases(commands)
        ends_in = await deps.pool.fetchval(
            "SELECT extract(epoch FROM min(lease_until) - clock_timestamp())::float8 "
            "FROM executor.jobs WHERE lease_until > clock_timestamp()"
        )
        delay = CHECK_S if ends_in is None else min(CHECK_S, max(MIN_SLEEP_S, float(ends_in)))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), delay)
