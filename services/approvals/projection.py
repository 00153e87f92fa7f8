"""The approvals service's read models: `approvals-requests` (each request as its stream leaves
it, folded from the store, never from the bus's copy) and `approvals-people` (who holds which
role, and who is deactivated: what "an allowed approver" is decided by)."""

from __future__ import annotations

from libs.events.catalog.approvals import APPROVAL_EVENTS
from libs.events.consumers import Consumer, HandlerContext
from libs.events.people_roles import people_roles
from libs.events.registry import DomainEvent
from services.approvals import domain


async def on_approval_event(ctx: HandlerContext, _event: DomainEvent) -> None:
    """Fold the request from its stream up to this event and keep the result."""
    envelope = ctx.envelope
    registry = ctx.store.registry
    history = await ctx.store.read_stream(
        envelope.stream_id, to_version=envelope.version, conn=ctx.conn
    )
    state = domain.fold(
        (registry.load(e), e.version, e.recorded_at) for e in history if registry.knows(e.type)
    )
    if state is None:
        return
    shown = state.out()
    await ctx.conn.execute(
        "INSERT INTO approvals.requests (approval_id, status, ticket, version, body, created_at, "
        "updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (approval_id) DO UPDATE SET "
        "status = excluded.status, version = excluded.version, body = excluded.body, "
        "updated_at = excluded.updated_at WHERE approvals.requests.version < excluded.version",
        state.id,
        state.status,
        state.requested.ticket,
        state.version,
        shown.model_dump(mode="json"),
        state.created_at,
        envelope.recorded_at,
    )


REQUESTS = Consumer(
    name="approvals-requests",
    handlers={cls.event_type: on_approval_event for cls in APPROVAL_EVENTS},
    tables=("approvals.requests",),
)


PEOPLE = people_roles("approvals-people", "approvals.people")
