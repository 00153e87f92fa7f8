"""The rules service's one consumer, `rules`: its read model and its firing, in one transaction.

`rule.*` events project rules, their versions and the state each event left a rule in;
`ticket.*` events project this service's own copy of the ticket (as it was right after each
event); an event that fires a trigger is then evaluated against the rule versions live just
before it in the log (`libs/rules/gate.py` says why the log's order), over that very snapshot
(`firing.fire`). Projecting first and firing in the same handler is what makes "the ticket right
after the event" exact, however the consumer lags.

Replayable: `opsledger replay rules` rebuilds the tables in log order and evaluates every event
again, which makes no second job (a firing's job stream exists, so its append is a no-op)."""

from __future__ import annotations

from libs.events.catalog.rules import (
    RuleArchived,
    RuleCreated,
    RuleDisabled,
    RuleEnabled,
    RuleRevised,
)
from libs.events.catalog.tickets import TICKET_EVENTS
from libs.events.consumers import Consumer, Handler, HandlerContext
from libs.events.registry import REGISTRY, DomainEvent
from libs.rules.ticket_view import Ticket, evolve, fold
from libs.rules.triggers import TRIGGERS, ticket_of, triggers_of
from services.rules import firing, queries


async def on_rule_created(ctx: HandlerContext, event: RuleCreated) -> None:
    at = ctx.envelope.recorded_at
    await ctx.conn.execute(
        "INSERT INTO rules.rules (id, version, enabled, definition, created_at, updated_at) "
        "VALUES ($1, 1, $2, $3, $4, $4) ON CONFLICT (id) DO NOTHING",
        event.rule_id,
        event.enabled,
        event.definition,
        at,
    )
    await _version(ctx, event.rule_id, 1, event.definition, event.by)
    await _state(ctx, event.rule_id)


async def on_rule_revised(ctx: HandlerContext, event: RuleRevised) -> None:
    await ctx.conn.execute(
        "UPDATE rules.rules SET version = $2, definition = $3, updated_at = $4 "
        "WHERE id = $1 AND version < $2",
        event.rule_id,
        event.version,
        event.definition,
        ctx.envelope.recorded_at,
    )
    await _version(ctx, event.rule_id, event.version, event.definition, event.by)
    await _state(ctx, event.rule_id)


async def on_rule_toggled(ctx: HandlerContext, event: RuleEnabled | RuleDisabled) -> None:
    await ctx.conn.execute(
        "UPDATE rules.rules SET enabled = $2, updated_at = $3 WHERE id = $1",
        event.rule_id,
        isinstance(event, RuleEnabled),
        ctx.envelope.recorded_at,
    )
    await _state(ctx, event.rule_id)


async def on_rule_archived(ctx: HandlerContext, event: RuleArchived) -> None:
    await ctx.conn.execute(
        "UPDATE rules.rules SET enabled = false, archived = true, updated_at = $2 WHERE id = $1",
        event.rule_id,
        ctx.envelope.recorded_at,
    )
    await _state(ctx, event.rule_id)


async def _version(
    ctx: HandlerContext, rule_id: str, version: int, definition: dict[str, object], by: str
) -> None:
    trigger = definition.get("trigger")
    name = trigger.get("event") if isinstance(trigger, dict) else None
    await ctx.conn.execute(
        "INSERT INTO rules.rule_versions (rule_id, version, definition, trigger, created_at, "
        "created_by) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
        rule_id,
        version,
        definition,
        str(name),
        ctx.envelope.recorded_at,
        by,
    )


async def _state(ctx: HandlerContext, rule_id: str) -> None:
    """The rule as this event left it, kept by the event's version in the rule's stream."""
    await ctx.conn.execute(
        "INSERT INTO rules.rule_states (rule_id, seq, at, version, live, position) "
        "SELECT id, $2, $3, version, enabled AND NOT archived, $4 FROM rules.rules "
        "WHERE id = $1 ON CONFLICT DO NOTHING",
        rule_id,
        ctx.envelope.version,
        ctx.envelope.recorded_at,
        ctx.envelope.position,
    )


async def on_ticket_event(ctx: HandlerContext, event: DomainEvent) -> None:
    """Project the ticket as this event leaves it, then fire what the event triggers."""
    ticket = await _project_ticket(ctx, event)
    if triggers_of(ctx.envelope.type):
        await firing.fire(ctx, ticket)


async def _project_ticket(ctx: HandlerContext, event: DomainEvent) -> Ticket | None:
    envelope = ctx.envelope
    key = envelope.stream_id.removeprefix("ticket-")
    before = await _ticket_before(ctx, key, envelope.version)
    after = evolve(before, event, version=envelope.version, at=envelope.recorded_at)
    if after is None:
        return None
    await ctx.conn.execute(
        "INSERT INTO rules.ticket_versions (key, version, event_id, state) "
        "VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
        key,
        envelope.version,
        envelope.id,
        after,
    )
    await ctx.conn.execute(
        "INSERT INTO rules.tickets (key, version, state) VALUES ($1, $2, $3) "
        "ON CONFLICT (key) DO UPDATE SET version = excluded.version, state = excluded.state "
        "WHERE rules.tickets.version < excluded.version",
        key,
        envelope.version,
        after,
    )
    return after


async def _ticket_before(ctx: HandlerContext, key: str, version: int) -> Ticket | None:
    """The ticket right before event `version`: its snapshot, or (when the event before it was
    parked, so never projected) folded from the stream in the store."""
    if version <= 1:
        return None
    known = await queries.ticket_at(ctx.conn, key, version - 1)
    if known is not None:
        return known
    history = await ctx.store.read_stream(
        f"ticket-{key}", to_version=version - 1, types=TICKET_TYPES, conn=ctx.conn
    )
    return fold((REGISTRY.load(e), e.version, e.recorded_at) for e in history)


async def on_other_trigger(ctx: HandlerContext, event: DomainEvent) -> None:
    """A trigger event not on a ticket's stream (a dead letter; later SLA timers, alerts): the
    ticket it names, as it is now."""
    key = ticket_of(ctx.envelope)
    ticket = await queries.ticket_now(ctx.conn, key) if key else None
    await firing.fire(ctx, ticket)


TICKET_TYPES = [cls.event_type for cls in TICKET_EVENTS]
_OTHER_TRIGGERS = sorted(
    {t for trigger in TRIGGERS.values() for t in trigger.event_types} - set(TICKET_TYPES)
)
"""Trigger events of other streams, those not written yet included: their handler is ready for
when they are (until then no such event is stored)."""

_HANDLERS: dict[str, Handler] = {
    RuleCreated.event_type: on_rule_created,
    RuleRevised.event_type: on_rule_revised,
    RuleEnabled.event_type: on_rule_toggled,
    RuleDisabled.event_type: on_rule_toggled,
    RuleArchived.event_type: on_rule_archived,
    **{name: on_ticket_event for name in TICKET_TYPES},
    **{name: on_other_trigger for name in _OTHER_TRIGGERS},
}

RULES = Consumer(
    name="rules",
    handlers=_HANDLERS,
    tables=(
        "rules.rules",
        "rules.rule_versions",
        "rules.rule_states",
        "rules.ticket_versions",
        "rules.tickets",
    ),
)
