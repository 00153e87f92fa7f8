"""GET /api/v1/events: the global log in commit order, for replay and debugging (admins)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query
from pydantic import BaseModel

from libs.events.contract import fit_page
from libs.events.envelope import Envelope
from libs.events.errors import ServiceError
from libs.events.registry import REGISTRY
from libs.events.store import UnknownPosition
from services.gateway.auth import AdminUser
from services.gateway.deps import DepsDep

router = APIRouter(prefix="/api/v1", tags=["events"])

POSITION_MAX = 2**63 - 1
"""Global positions are Postgres bigints."""
PAGE_BYTES = 1024 * 1024
"""A page stops before its events' JSON passes this (events carry up to ~200 KB each: a full
page of 1,000 could otherwise be hundreds of MB); next_cursor goes on from there."""


def parse_position(text: str) -> int | None:
    """The position `text` spells in ASCII digits, or None (str.isdigit alone accepts e.g. "²",
    which int() refuses, and no bound)."""
    if not (text.isascii() and text.isdigit()) or len(text) > len(str(POSITION_MAX)):
        return None
    position = int(text)
    return position if position <= POSITION_MAX else None


class EventOut(BaseModel):
    id: UUID
    position: int
    stream_id: str
    version: int
    type: str
    schema_version: int
    data: dict[str, Any]
    metadata: dict[str, Any]
    recorded_at: datetime


class EventPage(BaseModel):
    items: list[EventOut]
    next_cursor: str | None


def _out(env: Envelope) -> EventOut:
    """An event as it leaves the system: its secret fields redacted."""
    env = REGISTRY.redact(env)
    return EventOut(
        **env.model_dump(exclude={"metadata"}), metadata=env.metadata.model_dump(mode="json")
    )


@router.get("/events", response_model=EventPage)
async def list_events(
    deps: DepsDep,
    _: AdminUser,
    after: Annotated[
        int, Query(ge=0, le=POSITION_MAX, description="position of the last event already seen")
    ] = 0,
    cursor: Annotated[
        str | None, Query(max_length=20, description="next_cursor of the previous page")
    ] = None,
    type: Annotated[list[str] | None, Query(max_length=50)] = None,
    stream: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> EventPage:
    """Events in commit order after `after` (or `cursor`), optionally of some types or one stream.

    Order is the order transactions committed in, so positions are not always increasing; always
    resume with the last position you received (`next_cursor`). A page may hold fewer than
    `limit` events when they are large."""
    if cursor is not None:
        position = parse_position(cursor)
        if position is None:
            raise ServiceError(400, "INVALID_CURSOR", "cursor must be a position")
        after = position
    try:
        start = await deps.store.cursor_at(after)
    except UnknownPosition as exc:
        raise ServiceError(400, "INVALID_CURSOR", str(exc)) from None
    if stream is not None:  # the stream's own index, not a scan of the global log
        found = await deps.store.read_stream_after(stream, start, types=type, limit=limit)
    else:
        found = (await deps.store.read_batch(start, types=type, limit=limit)).events
    items = fit_page([_out(env) for env in found], budget=PAGE_BYTES)
    more = len(items) < len(found) or len(found) == limit
    return EventPage(items=items, next_cursor=str(items[-1].position) if more and items else None)
