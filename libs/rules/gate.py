"""The approval lock with no window: which gated rules fire on a ticket event, decided inside
the transaction that appends the event, and the lock (`ticket.approval_requested`) appended in
that same transaction.

Every writer of a ticket stream holds the gate *shared* (`hold_for_ticket_write`) from before
its append to its commit; every writer of a rule stream holds it *exclusive*
(`hold_for_rule_write`). So a rule change commits wholly before or wholly after each ticket
append, and the global positions of the two agree with that order: a rule event's position is
below a ticket event's exactly when the ticket's writer saw it. The rules service fires the rule
versions live just before the event's position (`rules.queries.live_versions`), so the job it
queues and the lock taken here are always about the same rule version: a rule change applies
to the next event, never half to one.

The gated rules themselves are read from the log (rule streams are events, shared by all), kept
per process as a cache that each ticket write first brings up to the log under the shared hold:
the cache is never ahead of what the holder may see, and never behind it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from libs.contracts.rule_definitions import RuleBody
from libs.events.catalog.rules import (
    RuleArchived,
    RuleCreated,
    RuleDisabled,
    RuleEnabled,
    RuleRevised,
)
from libs.events.catalog.tickets import TICKET_EVENTS, TicketApprovalRequested
from libs.events.db import Conn
from libs.events.envelope import Envelope
from libs.events.registry import REGISTRY, DomainEvent, EventRegistry
from libs.rules.firing import RuleVersion, approval_id, fires, job_id
from libs.rules.ticket_view import Ticket, evolve
from libs.rules.triggers import Trigger, triggers_of

GATE_LOCK: Final = 7_311_900
"""Advisory lock key (one for the whole system): shared by ticket writers, exclusive by rule
writers."""


TICKET_STREAM_TYPES: Final = frozenset(cls.event_type for cls in TICKET_EVENTS)


def lockable(trigger: Trigger) -> bool:
    """Whether a gated rule may trigger on it: its events are written to the ticket's own
    stream, so the lock is taken in their own append. A trigger whose events live in another
    stream (a job's dead letter; later SLA timers, staleness) would lock only after the fact."""
    return bool(trigger.event_types) and trigger.event_types <= TICKET_STREAM_TYPES


async def hold_for_ticket_write(conn: Conn) -> None:
    await conn.execute("SELECT pg_advisory_xact_lock_shared($1)", GATE_LOCK)


async def hold_for_rule_write(conn: Conn) -> None:
    await conn.execute("SELECT pg_advisory_xact_lock($1)", GATE_LOCK)


@dataclass
class _Rule:
    rule_id: str
    version: int
    body: RuleBody
    enabled: bool = True
    archived: bool = False


@dataclass
class GatedRules:
    """This process's copy of every rule, folded from rule events up to `seen` (a position)."""

    registry: EventRegistry = REGISTRY
    seen: int = 0
    rules: dict[str, _Rule] = field(default_factory=dict)
    _catching_up: asyncio.Lock = field(default_factory=asyncio.Lock)
    _gated: list[RuleVersion] | None = None

    async def hold(self, conn: Conn) -> None:
        """Hold the gate shared for `conn`'s transaction and bring the rules up to the log."""
        await hold_for_ticket_write(conn)
        async with self._catching_up:
            rows = await conn.fetch(
                "SELECT position, type, schema_version, data FROM eventstore.events "
                "WHERE stream_id LIKE 'rule-%' AND position > $1 ORDER BY position",
                self.seen,
            )
            for row in rows:
                if self.registry.knows(row["type"]):
                    data = row["data"]
                    loaded = self.registry.decode(row["type"], row["schema_version"], dict(data))
                    self._apply(loaded)
                self.seen = max(self.seen, int(row["position"]))

    def _apply(self, event: DomainEvent) -> None:
        self._gated = None
        match event:
            case RuleCreated():
                body = RuleBody.model_validate(event.definition)
                self.rules[event.rule_id] = _Rule(event.rule_id, 1, body, event.enabled)
            case RuleRevised() if event.rule_id in self.rules:
                rule = self.rules[event.rule_id]
                rule.version, rule.body = event.version, RuleBody.model_validate(event.definition)
            case RuleEnabled() | RuleDisabled() if event.rule_id in self.rules:
                self.rules[event.rule_id].enabled = isinstance(event, RuleEnabled)
            case RuleArchived() if event.rule_id in self.rules:
                rule = self.rules[event.rule_id]
                rule.enabled, rule.archived = False, True

    @property
    def any_gated(self) -> bool:
        """Whether some live rule locks tickets at all (most writes then need nothing more)."""
        return bool(self.live_gated())

    def live_gated(self) -> list[RuleVersion]:
        """The rule versions that lock a ticket when they fire: live, active, with approval."""
        if self._gated is None:
            self._gated = [
                RuleVersion(r.rule_id, r.version, r.body)
                for r in sorted(self.rules.values(), key=lambda r: r.rule_id)
                if r.enabled and not r.archived and r.body.mode == "active" and r.body.approval
            ]
        return self._gated

    def locks(
        self,
        before: Ticket | None,
        written: Sequence[Envelope],
        *,
        max_depth: int,
        registry: EventRegistry = REGISTRY,
    ) -> list[TicketApprovalRequested]:
        """The locks to append right after `written` (events of one ticket's stream, the ticket
        being `before` just before them): one per gated rule version that fires on one of them."""
        gated = self.live_gated()
        if not gated or not any(triggers_of(e.type) for e in written):
            return []
        found: list[TicketApprovalRequested] = []
        ticket = before
        for envelope in written:
            ticket = _after(ticket, envelope, registry)
            if not triggers_of(envelope.type):
                continue
            for rule in gated:
                if fires(rule, envelope, ticket, max_depth=max_depth):
                    found.append(lock_of(rule, envelope))
        return found


def _after(ticket: Ticket | None, envelope: Envelope, registry: EventRegistry) -> Ticket | None:
    if not registry.knows(envelope.type):
        return ticket
    loaded = registry.load(envelope)
    return evolve(ticket, loaded, version=envelope.version, at=envelope.recorded_at)


def lock_of(rule: RuleVersion, trigger: Envelope) -> TicketApprovalRequested:
    """The lock of one gated firing, naming everything the approvals service opens it with."""
    job = job_id(rule.rule_id, rule.version, trigger.id)
    approval = rule.body.approval
    details: dict[str, Any] = {
        "rule_id": rule.rule_id,
        "rule_version": rule.version,
        "rule_name": rule.body.name,
        "job_id": job,
        "trigger_event_id": str(trigger.id),
        "approval": approval.model_dump(mode="json") if approval else None,
    }
    return TicketApprovalRequested(
        approval_id=approval_id(job),
        action=", ".join(a.type for a in rule.body.actions),
        requested_by=f"rule:{rule.rule_id}",
        details=details,
    )


def ticket_before(history: Iterable[Envelope], registry: EventRegistry = REGISTRY) -> Ticket | None:
    """The ticket, as rule conditions read it, after every event of `history`."""
    ticket: Ticket | None = None
    for envelope in history:
        ticket = _after(ticket, envelope, registry)
    return ticket
