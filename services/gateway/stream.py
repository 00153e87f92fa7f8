"""GET /api/v1/stream: ticket events as they happen (Server-Sent Events), only those the caller
may see. Live events come from a core NATS subscription; `Last-Event-ID` (a global position)
first replays what was missed from the store."""

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

from libs.events.consumers import Consumer, HandlerContext
from libs.events.envelope import Envelope
from libs.events.runtime import Deps
from libs.events.store import UnknownPosition, load_envelope
from services.gateway.auth import CurrentUser, Principal
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
    handlers={"ticket.created": _remember_requester},
    tables=("gateway.ticket_access",),
)


async def may_see(deps: Deps, who: Principal, envelope: Envelope) -> bool:
    if not envelope.type.startswith("ticket."):
        return False
    if who.is_staff:
        return True
    if envelope.data.get("internal") is True:
        return False
    if envelope.type == "ticket.created":
        return bool(envelope.data.get("requester_id") == who.user_id)
    owner = await deps.pool.fetchval(
        "SELECT requester_id FROM gateway.ticket_access WHERE stream_id = $1", envelope.stream_id
    )
    return bool(owner == who.user_id)


def _frame(envelope: Envelope) -> dict[str, str]:
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
                            if await may_see(deps, who, envelope):
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
                if await may_see(deps, who, envelope):
                    yield _frame(envelope)
        finally:
            with contextlib.suppress(Exception):
                await subscription.unsubscribe()

    return EventSourceResponse(frames(), ping=PING_S)
