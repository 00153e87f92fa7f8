"""GET /api/v1/stream: ticket events as they happen (Server-Sent Events), only those the caller
may see, by the same policy as every other read of a ticket (`libs.contracts.ticket_visibility`).
Live events come from a core NATS subscription; `Last-Event-ID` (a global position) first replays
what was missed from the store."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Header, Request
from nats.aio.msg import Msg
from pydantic import ValidationError
from sse_starlette.sse import EventSourceResponse

from libs.contracts.ticket_visibility import Viewer, may_see_event
from libs.events.catalog.tickets import TicketCreated
from libs.events.consumers import Consumer, HandlerContext
from libs.events.envelope import Envelope
from libs.events.registry import REGISTRY
from libs.events.runtime import Deps
from libs.events.store import UnknownPosition, load_envelope
from services.gateway.auth import CurrentUser
from services.gateway.deps import DepsDep
from services.gateway.events_api import parse_position

router = APIRouter(prefix="/api/v1", tags=["events"])

QUEUE_LIMIT = 1000
PING_S = 15


async def _remember_requester(ctx: HandlerContext, event: Any) -> None:
    await ctx.conn.execute(
        "INSERT INTO gateway.ticket_access (stream_id, requester_id) VALUES ($1, $2) "
        "ON CONFLICT (stream_id) DO NOTHING",
        ctx.envelope.stream_id,
        ctx.envelope.data["requester_id"],
    )


TICKET_ACCESS = Consumer(
    name="gateway-ticket-access",
    handlers={TicketCreated.event_type: _remember_requester},
    tables=("gateway.ticket_access",),
)


class Requesters:
    """Who requested each ticket, as one connection's stream learns it: a ticket's requester
    never changes, so each ticket is looked up at most once per connection, not once per event
    (bounded: the oldest answers are forgotten first)."""

    LIMIT = 10_000

    def __init__(self, deps: Deps) -> None:
        self.deps = deps
        self._known: dict[str, str] = {}

    async def of(self, envelope: Envelope) -> str | None:
        """The requester of the ticket the event belongs to (None while not yet known)."""
        if envelope.type == TicketCreated.event_type:  # the access row may not be written yet
            value = envelope.data.get("requester_id")
            if value is None:
                return None
            self._remember(envelope.stream_id, str(value))
            return str(value)
        known = self._known.get(envelope.stream_id)
        if known is not None:
            return known
        owner = await self.deps.pool.fetchval(
            "SELECT requester_id FROM gateway.ticket_access WHERE stream_id = $1",
            envelope.stream_id,
        )
        if owner is None:
            return None  # not projected yet: ask again next time
        self._remember(envelope.stream_id, str(owner))
        return str(owner)

    def _remember(self, stream_id: str, requester: str) -> None:
        if len(self._known) >= self.LIMIT:
            self._known.pop(next(iter(self._known)))
        self._known[stream_id] = requester


async def may_see(requesters: Requesters, who: Viewer, envelope: Envelope) -> bool:
    """Whether the stream shows `who` this event: ticket events only, by the ticket policy."""
    if not envelope.type.startswith("ticket."):
        return False
    # staff see every ticket's events, so their frames need no lookup of the requester
    owner = None if who.is_staff else await requesters.of(envelope)
    return may_see_event(who, requester_id=owner, data=envelope.data)


def _frame(envelope: Envelope) -> dict[str, str]:
    """One SSE frame; an event's secret fields never leave (the stream shows only ticket events
    today, whose fields are all shown, but the rule is the same on every way out)."""
    envelope = REGISTRY.redact(envelope)
    return {
        "id": str(envelope.position),
        "event": envelope.type,
        "data": envelope.model_dump_json(),
    }


@router.get("/stream", response_class=EventSourceResponse)
async def stream(
    request: Request,
    deps: DepsDep,
    who: CurrentUser,
    last_event_id: Annotated[str | None, Header(max_length=20)] = None,
) -> EventSourceResponse:
    """Live ticket events for the caller (SSE). Reconnect with Last-Event-ID to catch up."""
    queue: asyncio.Queue[Envelope] = asyncio.Queue(QUEUE_LIMIT)

    async def on_msg(msg: Msg) -> None:
        with contextlib.suppress(ValidationError, ValueError, asyncio.QueueFull):
            queue.put_nowait(load_envelope(msg.data))

    subject = deps.settings.event_subject_filter("ticket")
    subscription = await deps.nc.subscribe(subject, cb=on_msg)

    requesters = Requesters(deps)

    async def frames() -> AsyncIterator[dict[str, str]]:
        sent: set[UUID] = set()
        try:
            resume = parse_position(last_event_id) if last_event_id is not None else None
            if resume is not None:
                with contextlib.suppress(UnknownPosition):
                    cursor = await deps.store.cursor_at(resume)
                    while True:
                        batch = await deps.store.read_batch(cursor, limit=500)
                        for envelope in batch.events:
                            sent.add(envelope.id)
                            if await may_see(requesters, who, envelope):
                                yield _frame(envelope)
                        cursor = batch.cursor
                        if len(batch.events) < 500:
                            break
            while not await request.is_disconnected():
                try:
                    envelope = await asyncio.wait_for(queue.get(), timeout=1.0)
                except TimeoutError:
                    continue
                if envelope.id in sent:
                    continue
                if await may_see(requesters, who, envelope):
                    yield _frame(envelope)
        finally:
            with contextlib.suppress(Exception):
                await subscription.unsubscribe()

    return EventSourceResponse(frames(), ping=PING_S)
