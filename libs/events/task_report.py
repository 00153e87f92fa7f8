"""Publishing a process's task health to Postgres, so `/readyz` on any gateway replica can say
which task of which process is down and since when (a Compose deployment runs each service in
its own process; a supervisor only knows its own tasks).

Every process writes its supervisor's states to eventstore.task_status every few seconds (and at
once when a state changes); a row not refreshed for REPORT_STALE_S belongs to a process that is
gone (stopped, or killed without a chance to say so) and is no longer counted.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from libs.events.supervisor import Supervisor, TaskState, TaskStatus

REPORT_EVERY_S = 2.0
REPORT_STALE_S = 15.0
STARTING_GRACE_S = 30.0


@dataclass(frozen=True)
class ReportedTask:
    process: str
    task: str
    state: str
    since: datetime
    restarts: int
    last_error: str | None

    def to_dict(self) -> dict[str, object]:
        return {
            "process": self.process,
            "task": self.task,
            "state": self.state,
            "since": self.since.isoformat(),
            "restarts": self.restarts,
            "last_error": self.last_error,
        }


class TaskReporter:
    """The supervised task that writes this process's task states (itself included)."""

    def __init__(self, *, pool: asyncpg.Pool, supervisor: Supervisor) -> None:
        self.pool = pool
        self.supervisor = supervisor
        self.process = supervisor.process

    async def run(self, status: TaskStatus) -> None:
        await self.pool.execute(  # rows of processes long gone
            "DELETE FROM eventstore.task_status WHERE reported_at < now() - interval '1 day'"
        )
        status.up()
        try:
            while not status.stopping.is_set():
                await self.report(self.supervisor.states())
                await self._until_changed_or_stopped(status.stopping)
        finally:
            with contextlib.suppress(Exception):  # a clean stop: this process is gone
                await self.pool.execute(
                    "DELETE FROM eventstore.task_status WHERE process = $1", self.process
                )

    async def _until_changed_or_stopped(self, stopping: asyncio.Event) -> None:
        changed = asyncio.ensure_future(self.supervisor.changed())
        stopped = asyncio.ensure_future(stopping.wait())
        try:
            await asyncio.wait(
                {changed, stopped}, timeout=REPORT_EVERY_S, return_when="FIRST_COMPLETED"
            )
        finally:
            changed.cancel()
            stopped.cancel()

    async def report(self, states: list[TaskState]) -> None:
        await self.pool.execute(
            "INSERT INTO eventstore.task_status AS t "
            "(process, task, state, since, restarts, last_error, reported_at) "
            "SELECT $1, s.task, s.state, s.since, s.restarts, s.last_error, now() "
            "FROM unnest($2::text[], $3::text[], $4::timestamptz[], $5::int[], $6::text[]) "
            "AS s(task, state, since, restarts, last_error) "
            "ON CONFLICT (process, task) DO UPDATE SET state = excluded.state, "
            "since = excluded.since, restarts = excluded.restarts, "
            "last_error = excluded.last_error, reported_at = excluded.reported_at",
            self.process,
            [s.name for s in states],
            ["stalled" if s.stalled else s.state for s in states],
            [s.since for s in states],
            [s.restarts for s in states],
            [s.last_error for s in states],
        )


async def tasks_down_elsewhere(pool: asyncpg.Pool, *, this_process: str) -> list[ReportedTask]:
    """Tasks of other live processes that report themselves unhealthy. A task of another
    process that is still starting counts only once it has been starting for STARTING_GRACE_S:
    a replica booting beside this one does not make this one unready."""
    rows = await pool.fetch(
        "SELECT process, task, state, since, restarts, last_error FROM eventstore.task_status "
        "WHERE process <> $1 AND state NOT IN ('up', 'finished') "
        "AND (state <> 'starting' OR since < now() - make_interval(secs => $3)) "
        "AND reported_at > now() - make_interval(secs => $2) ORDER BY process, task",
        this_process,
        REPORT_STALE_S,
        STARTING_GRACE_S,
    )
    return [ReportedTask(**dict(r)) for r in rows]
