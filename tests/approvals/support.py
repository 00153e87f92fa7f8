"""Helpers of the approval gate tests: tickets, rules, the executor and approvals running on
real Postgres and NATS (with the timer scheduler), called the way the gateway calls them."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from libs.events.errors import ServiceError
from libs.events.runtime import Deps
from libs.events.settings import Settings
from libs.events.testing import eventually, isolated_system
from services.approvals.app import SERVICE as APPROVALS
from services.executor.app import SERVICE as EXECUTOR
from services.rules.app import SERVICE as RULES
from services.tickets.app import SERVICE as TICKETS
from tests.executor.conftest import FAST
from tests.tickets.support import ADMIN, ALICE, PEOPLE, Desk, Who, seed_people

TERMINAL = frozenset({"succeeded", "skipped", "dead_lettered"})
DEPLOY_FIELDS: dict[str, Any] = {
    "service": "api",
    "environment": "production",
    "version": "2.0",
    "rollback_plan": "redeploy 1.9",
}


def gated_rule(**changes: Any) -> dict[str, Any]:
    """Production deployments wait for an operator's or admin's approval, then get tagged."""
    base: dict[str, Any] = {
        "name": "Prod deploys need approval",
        "trigger": {"event": "ticket.created"},
        "conditions": {"field": "fields.environment", "op": "eq", "value": "production"},
        "actions": [{"type": "add_tag", "params": {"tag": "approved"}}],
        "approval": {"approvers": {"roles": ["operator", "admin"]}, "quorum": 1},
    }
    return base | changes


@dataclass
class Gate:
    deps: Deps

    @property
    def desk(self) -> Desk:
        return Desk(self.deps)

    async def call(self, service: str, method: str, body: dict[str, Any], *, by: Who) -> Any:
        return await self.deps.rpc.call(
            service, method, body, actor=by.actor, role=by.role, on_behalf_of=by.on_behalf_of
        )

    async def refused(
        self, service: str, method: str, body: dict[str, Any], *, by: Who
    ) -> ServiceError:
        with pytest.raises(ServiceError) as caught:
            await self.call(service, method, body, by=by)
        return caught.value

    async def rule(self, **changes: Any) -> dict[str, Any]:
        made: dict[str, Any] = await self.call(
            "rules", "rules.create", {"definition": gated_rule(**changes)}, by=ADMIN
        )
        return made

    async def deploy(self, by: Who = ALICE, **fields: Any) -> str:
        body = {"type": "deployment", "title": "Deploy api 2.0", "fields": DEPLOY_FIELDS | fields}
        created = await self.desk.call("tickets.create", body, by=by)
        return str(created["key"])

    async def ticket(self, key: str, by: Who = ADMIN) -> dict[str, Any]:
        found: dict[str, Any] = await self.desk.call("tickets.get", {"key": key}, by=by)
        return found

    async def approval_of(self, key: str) -> dict[str, Any]:
        """The (only) approval request of ticket `key`, once the approvals service has it."""

        async def probe() -> dict[str, Any] | None:
            page = await self.call("approvals", "approvals.list", {"ticket": key}, by=ADMIN)
            return page["items"][0] if page["items"] else None

        found = await eventually(probe, timeout=20)
        if found is None:
            raise AssertionError(f"no approval request for {key}")
        return found

    async def vote(
        self, approval_id: str, vote: str, *, by: Who, reason: str | None = None
    ) -> dict[str, Any]:
        body = {"id": approval_id, "vote": vote, "reason": reason}
        decided: dict[str, Any] = await self.call("approvals", "approvals.decide", body, by=by)
        return decided

    async def job(self, job_id: str, *, settled: bool = True) -> dict[str, Any]:
        async def probe() -> dict[str, Any] | None:
            try:
                found: dict[str, Any] = await self.call(
                    "executor", "jobs.get", {"id": job_id}, by=ADMIN
                )
            except ServiceError:
                return None
            return found if not settled or found["state"] in TERMINAL else None

        found = await eventually(probe, timeout=30)
        if found is None:
            raise AssertionError(f"job {job_id} did not settle")
        return found

    async def stream_types(self, key: str) -> list[str]:
        rows = await self.deps.pool.fetch(
            "SELECT type FROM eventstore.events WHERE stream_id = $1 ORDER BY version",
            f"ticket-{key}",
        )
        return [r["type"] for r in rows]


@contextlib.asynccontextmanager
async def gate_system(settings: Settings, database_url: str, nats_url: str) -> AsyncIterator[Gate]:
    """Every service a gated firing crosses, with the timer scheduler, once the approvals
    service knows every test person."""
    system = isolated_system(
        settings.model_copy(update=FAST),
        database_url,
        nats_url,
        services=(TICKETS, RULES, EXECUTOR, APPROVALS),
        replica="r1",
        timers=True,
    )
    async with system as deps:
        await seed_people(deps)

        async def approvers_known() -> int:
            return int(await deps.pool.fetchval("SELECT count(*) FROM approvals.people"))

        await eventually(approvers_known, until=lambda n: n == len(PEOPLE))
        yield Gate(deps)
