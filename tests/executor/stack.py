"""The executor tests' view of a running deployment: open tickets, queue jobs the way the rules
service does, register webhooks, call the executor, and wait for a job's outcome."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from libs.events.envelope import Actor, Metadata
from libs.events.runtime import Deps
from libs.events.store import NO_STREAM
from libs.events.testing import eventually
from tests.executor.jobs import firing, queued
from tests.tickets.support import ADMIN, ALICE, OPERATOR, Desk, Who, seed_people

RULES = Metadata(actor=Actor.service("rules"), service="rules")
TERMINAL = frozenset({"succeeded", "skipped", "dead_lettered"})


@dataclass
class Stack:
    deps: Deps

    @property
    def desk(self) -> Desk:
        return Desk(self.deps)

    async def ticket(self) -> str:
        created = await self.desk.open(ALICE)
        return str(created["key"])

    async def queue(self, actions: list[dict[str, Any]], *, ticket: str, **kwargs: Any) -> str:
        """Append a job's first events as the rules service does; its id."""
        events = firing(actions, ticket=ticket, **kwargs)
        job = queued(events).job_id
        await self.deps.store.append(
            f"job-{job}", events, expected_version=NO_STREAM, metadata=RULES
        )
        return job

    async def call(self, method: str, body: dict[str, Any], *, by: Who = OPERATOR) -> Any:
        return await self.deps.rpc.call(
            "executor", method, body, actor=by.actor, role=by.role, on_behalf_of=by.on_behalf_of
        )

    async def webhook(
        self, url: str, *, secret: str | None = "s3cret", kind: str = "webhook"
    ) -> str:
        body = {"name": "hook", "kind": kind, "url": url, "secret": secret}
        created = await self.call("webhooks.create", body, by=ADMIN)
        return str(created["id"])

    async def job(self, job_id: str) -> dict[str, Any]:
        found: dict[str, Any] = await self.call("jobs.get", {"id": job_id})
        return found

    async def settled(self, job_id: str, *, timeout: float = 20.0) -> dict[str, Any]:
        """The job once it is in a terminal state."""

        async def probe() -> dict[str, Any] | None:
            rows = await self.deps.pool.fetchval(
                "SELECT state FROM executor.jobs WHERE job_id = $1", job_id
            )
            return await self.job(job_id) if rows in TERMINAL else None

        found = await eventually(probe, timeout=timeout, interval=0.05)
        if found is None:  # eventually() returns only what passes `until` (truthy)
            raise AssertionError(f"job {job_id} did not settle")
        return found

    async def ticket_events(self, key: str) -> list[str]:
        return await self.desk.event_types(key)


async def seeded(deps: Deps) -> Stack:
    """The stack over a running system once the tickets service knows every test person."""
    await seed_people(deps)
    return Stack(deps)
