"""Helpers of the tickets tests: callers by role, seeding users, calling the service over NATS."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from libs.events.catalog.people import UserRegistered
from libs.events.catalog.tickets import TicketApprovalDecided, TicketApprovalRequested
from libs.events.envelope import Actor, ActorKind, Metadata
from libs.events.errors import ServiceError
from libs.events.runtime import Deps
from libs.events.store import ANY, NO_STREAM
from libs.events.testing import eventually


@dataclass(frozen=True)
class Who:
    """A caller as the gateway would present it: an actor and a role (None for automation)."""

    actor: Actor
    role: str | None
    on_behalf_of: str | None = None

    @property
    def id(self) -> str:
        return self.actor.id


def user(user_id: str, role: str) -> Who:
    return Who(Actor(kind=ActorKind.USER, id=user_id), role)


ADMIN = user("u-admin", "admin")
OPERATOR = user("u-oper", "operator")
ALICE = user("u-alice", "requester")
BOB = user("u-bob", "requester")
BOT = Who(Actor.service("rules"), None)
"""Automation: a service calling with no role."""

PEOPLE = {ADMIN: "admin", OPERATOR: "operator", ALICE: "requester", BOB: "requester"}
APPROVALS = Metadata(actor=Actor.service("approvals"), service="approvals")


@dataclass
class Desk:
    """The tickets service running on real Postgres and NATS, called the way the gateway does."""

    deps: Deps

    async def call(self, method: str, body: dict[str, Any] | None = None, *, by: Who) -> Any:
        return await self.deps.rpc.call(
            "tickets",
            method,
            body or {},
            actor=by.actor,
            role=by.role,
            on_behalf_of=by.on_behalf_of,
        )

    async def refused(self, method: str, body: dict[str, Any], *, by: Who) -> ServiceError:
        with pytest.raises(ServiceError) as caught:
            await self.call(method, body, by=by)
        return caught.value

    async def open(self, by: Who = ALICE, **overrides: Any) -> dict[str, Any]:
        """An incident ticket (the simplest built-in type) opened by `by`."""
        body = {"type": "incident", "title": "API is down", "fields": {"service": "api"}}
        result: dict[str, Any] = await self.call("tickets.create", body | overrides, by=by)
        return result

    async def move(self, key: str, *statuses: str, by: Who = OPERATOR) -> dict[str, Any]:
        ticket: dict[str, Any] = {}
        for status in statuses:
            ticket = await self.call("tickets.change_status", {"key": key, "status": status}, by=by)
        return ticket

    async def request_approval(self, key: str, approval_id: str = "apr-1") -> None:
        """What the approvals service will do: lock the ticket by appending to its stream."""
        event = TicketApprovalRequested(approval_id=approval_id, action="resolve")
        await self.deps.store.append(
            f"ticket-{key}", [event], expected_version=ANY, metadata=APPROVALS
        )

    async def decide_approval(self, key: str, approval_id: str = "apr-1") -> None:
        event = TicketApprovalDecided(approval_id=approval_id, decision="approved")
        await self.deps.store.append(
            f"ticket-{key}", [event], expected_version=ANY, metadata=APPROVALS
        )

    async def event_types(self, key: str, by: Who = OPERATOR) -> list[str]:
        page = await self.call("tickets.events", {"key": key}, by=by)
        return [item["type"] for item in page["items"]]


async def register(deps: Deps, who: Who, role: str) -> None:
    event = UserRegistered(user_id=who.id, email=f"{who.id}@example.com", name=who.id, role=role)
    meta = Metadata(actor=Actor.system(), service="gateway")
    await deps.store.append(f"user-{who.id}", [event], expected_version=NO_STREAM, metadata=meta)


async def seed_people(deps: Deps) -> None:
    """Register every test person and wait until the tickets service has projected them all."""
    for who, role in PEOPLE.items():
        await register(deps, who, role)

    async def people() -> int:
        return int(await deps.pool.fetchval("SELECT count(*) FROM tickets.people"))

    await eventually(people, until=lambda n: n == len(PEOPLE))
