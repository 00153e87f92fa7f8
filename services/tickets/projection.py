"""The tickets read model: TICKETS_PROJECTION and PEOPLE, replayable, in schema `tickets`.

TICKETS_PROJECTION keeps types (every version), tickets and comments; PEOPLE keeps who is staff
(from the gateway's `user.*` events, not its tables)."""

from __future__ import annotations

from typing import Any

from libs.events.catalog.people import UserRegistered, UserRoleChanged
from libs.events.catalog.tickets import (
    TICKET_EVENTS,
    TicketCommented,
    TicketTypeDefined,
    TicketTypeRevised,
)
from libs.events.consumers import Consumer, Handler, HandlerContext
from libs.events.registry import DomainEvent
from services.tickets.state import TicketState, evolve

_UPSERT = """
INSERT INTO tickets.tickets (key, number, type, type_version, title, description, status,
    priority, requester_id, assignee_id, tags, locked, created_at, updated_at, version, state)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
ON CONFLICT (key) DO UPDATE SET status = excluded.status, priority = excluded.priority,
    assignee_id = excluded.assignee_id, tags = excluded.tags, locked = excluded.locked,
    updated_at = excluded.updated_at, version = excluded.version, state = excluded.state
"""


def key_of(stream_id: str) -> str:
    return stream_id.removeprefix("ticket-")


async def on_ticket_event(ctx: HandlerContext, event: DomainEvent) -> None:
    """Fold the event into the stored state with the same evolve() the commands use."""
    key = key_of(ctx.envelope.stream_id)
    state = None  # a stream's first event has no state before it: nothing to read
    if ctx.envelope.version > 1:
        raw = await ctx.conn.fetchval("SELECT state FROM tickets.tickets WHERE key = $1", key)
        state = TicketState.model_validate(raw) if raw is not None else None
    new = evolve(state, event, version=ctx.envelope.version, at=ctx.envelope.recorded_at)
    if new is None:
        return
    await ctx.conn.execute(
        _UPSERT,
        new.key,
        new.number,
        new.type,
        new.type_version,
        new.title,
        new.description,
        new.status,
        new.priority,
        new.requester_id,
        new.assignee_id,
        list(new.tags),
        new.locked,
        new.created_at,
        new.updated_at,
        new.version,
        new.model_dump(mode="json"),
    )


async def on_ticket_commented(ctx: HandlerContext, event: TicketCommented) -> None:
    await on_ticket_event(ctx, event)
    await ctx.conn.execute(
        "INSERT INTO tickets.comments (id, key, position, author_id, body, internal, created_at) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (id) DO NOTHING",
        event.comment_id,
        key_of(ctx.envelope.stream_id),
        ctx.envelope.position,
        event.author_id,
        event.body,
        event.internal,
        ctx.envelope.recorded_at,
    )


async def on_type_defined(ctx: HandlerContext, event: TicketTypeDefined) -> None:
    await _type_version(ctx, event.key, 1, event.name, event.fields)
    at = ctx.envelope.recorded_at
    await ctx.conn.execute(
        "INSERT INTO tickets.types (key, name, version, builtin, fields, created_at, updated_at) "
        "VALUES ($1, $2, 1, $3, $4, $5, $5) ON CONFLICT (key) DO NOTHING",
        event.key,
        event.name,
        event.builtin,
        event.fields,
        at,
    )


async def on_type_revised(ctx: HandlerContext, event: TicketTypeRevised) -> None:
    await _type_version(ctx, event.key, event.version, event.name, event.fields)
    await ctx.conn.execute(
        "UPDATE tickets.types SET name = $2, version = $3, fields = $4, updated_at = $5 "
        "WHERE key = $1 AND version < $3",
        event.key,
        event.name,
        event.version,
        event.fields,
        ctx.envelope.recorded_at,
    )


async def _type_version(
    ctx: HandlerContext, key: str, version: int, name: str, fields: list[dict[str, Any]]
) -> None:
    await ctx.conn.execute(
        "INSERT INTO tickets.type_versions (key, version, name, fields, defined_at) "
        "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (key, version) DO NOTHING",
        key,
        version,
        name,
        fields,
        ctx.envelope.recorded_at,
    )


async def on_user_registered(ctx: HandlerContext, event: UserRegistered) -> None:
    await _set_role(ctx, event.user_id, event.role)


async def on_user_role_changed(ctx: HandlerContext, event: UserRoleChanged) -> None:
    await _set_role(ctx, event.user_id, event.role)


async def _set_role(ctx: HandlerContext, user_id: str, role: str) -> None:
    await ctx.conn.execute(
        "INSERT INTO tickets.people (user_id, role) VALUES ($1, $2) "
        "ON CONFLICT (user_id) DO UPDATE SET role = excluded.role",
        user_id,
        role,
    )


_TICKET_HANDLERS: dict[str, Handler] = {cls.event_type: on_ticket_event for cls in TICKET_EVENTS}

TICKETS_PROJECTION = Consumer(
    name="tickets-projection",
    handlers={
        **_TICKET_HANDLERS,
        TicketCommented.event_type: on_ticket_commented,
        TicketTypeDefined.event_type: on_type_defined,
        TicketTypeRevised.event_type: on_type_revised,
    },
    tables=("tickets.types", "tickets.type_versions", "tickets.tickets", "tickets.comments"),
)

PEOPLE = Consumer(
    name="tickets-people",
    handlers={
        UserRegistered.event_type: on_user_registered,
        UserRoleChanged.event_type: on_user_role_changed,
    },
    tables=("tickets.people",),
)
