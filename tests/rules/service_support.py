"""Helpers of the rules service tests: a running rules service on real Postgres and NATS, rules
written over its RPC methods, ticket events appended as the tickets service would, and jobs read
from the log."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from libs.events.catalog.tickets import TicketCreated, TicketStatusChanged, TicketTagged
from libs.events.envelope import Actor, ActorKind, Envelope, Metadata
from libs.events.errors import ServiceError
from libs.events.registry import DomainEvent
from libs.events.runtime import Deps
from libs.events.settings import Settings
from libs.events.store import ANY, NO_STREAM
from libs.events.system import System
from libs.events.testing import eventually, isolated_system
from services.rules.app import SERVICE

ADMIN = (Actor(kind=ActorKind.USER, id="u-admin"), "admin")
OPERATOR = (Actor(kind=ActorKind.USER, id="u-oper"), "operator")
REQUESTER = (Actor(kind=ActorKind.USER, id="u-alice"), "requester")
TICKETS = Metadata(actor=Actor.service("tickets"), service="tickets")
HUMAN = Metadata(actor=Actor(kind=ActorKind.USER, id="u-oper"), service="tickets")


def rules_system(settings: Settings, database_url: str, nats_url: str, name: str = "r1") -> System:
    return isolated_system(settings, database_url, nats_url, services=(SERVICE,), replica=name)


def definition(**changes: Any) -> dict[str, Any]:
    """A rule that tags every new incident ticket of service `api`."""
    base: dict[str, Any] = {
        "name": "Tag API incidents",
        "trigger": {"event": "ticket.created"},
        "conditions": {"field": "fields.service", "op": "eq", "value": "api"},
        "actions": [{"type": "add_tag", "params": {"tag": "api"}}],
    }
    return base | changes


@dataclass
class Rules:
    """The rules service, called the way the gateway calls it, and the log it writes to."""

    deps: Deps

    async def call(
        self, method: str, body: dict[str, Any], *, by: tuple[Actor, str | None] = ADMIN
    ) -> Any:
        actor, role = by
        return await self.deps.rpc.call("rules", method, body, actor=actor, role=role)

    async def refused(
        self, method: str, body: dict[str, Any], *, by: tuple[Actor, str | None] = ADMIN
    ) -> ServiceError:
        with pytest.raises(ServiceError) as caught:
            await self.call(method, body, by=by)
        return caught.value

    async def create(self, **changes: Any) -> dict[str, Any]:
        made: dict[str, Any] = await self.call(
            "rules.create", {"definition": definition(**changes)}
        )
        return made

    async def append(
        self, key: str, events: list[DomainEvent], meta: Metadata = HUMAN
    ) -> list[Envelope]:
        expected = NO_STREAM if isinstance(events[0], TicketCreated) else ANY
        return await self.deps.store.append(
            f"ticket-{key}", events, expected_version=expected, metadata=meta
        )

    async def open(self, key: str, service: str = "api", **extra: Any) -> Envelope:
        created = TicketCreated(
            key=key,
            number=int(key.rsplit("-", 1)[1]),
            type="incident",
            type_version=1,
            title="API is down",
            priority=extra.pop("priority", "high"),
            requester_id="u-alice",
            fields={"service": service},
        )
        [written] = await self.append(key, [created], TICKETS)
        return written

    async def move(self, key: str, frm: str, to: str, meta: Metadata = HUMAN) -> Envelope:
        [written] = await self.append(
            key, [TicketStatusChanged(from_status=frm, to_status=to, by="u-oper")], meta
        )
        return written

    async def tag(self, key: str, tag: str, meta: Metadata = HUMAN) -> Envelope:
        [written] = await self.append(key, [TicketTagged(tag=tag, by="u-oper")], meta)
        return written

    async def jobs(self) -> list[dict[str, Any]]:
        """Every job.queued in the log, oldest first."""
        rows = await self.deps.pool.fetch(
            "SELECT stream_id, data FROM eventstore.events WHERE type = 'job.queued' "
            "ORDER BY position"
        )
        return [dict(r["data"]) | {"stream_id": r["stream_id"]} for r in rows]

    async def handled(self, envelope: Envelope) -> None:
        """Wait until the live `rules` consumer has passed `envelope`."""

        async def version() -> int:
            found = await self.deps.pool.fetchval(
                "SELECT version FROM eventstore.consumer_streams "
                "WHERE consumer = 'rules' AND stream_id = $1",
                envelope.stream_id,
            )
            return int(found or 0)

        await eventually(version, until=lambda v: v >= envelope.version)

    async def settled(self) -> None:
        """Wait until the live `rules` consumer has passed every ticket event stored so far."""

        async def behind() -> int:
            return int(
                await self.deps.pool.fetchval(
                    "SELECT count(*) FROM (SELECT stream_id, max(version) AS v "
                    "FROM eventstore.events WHERE stream_id LIKE 'ticket-%' GROUP BY stream_id) s "
                    "LEFT JOIN eventstore.consumer_streams c "
                    "ON c.consumer = 'rules' AND c.stream_id = s.stream_id "
                    "WHERE coalesce(c.version, 0) < s.v"
                )
            )

        await eventually(behind, until=lambda n: n == 0)

    async def count_events(self) -> int:
        return int(await self.deps.pool.fetchval("SELECT count(*) FROM eventstore.events"))
