"""GET /api/v1/stream: ticket events as they happen (Server-Sent Events), only those the caller
may see, by the same policy as every other read of a ticket (`libs.contracts.ticket_visibility`),
and the caller's own notifications (notification.*: to the user each is for, never anyone else,
admins included: `libs.contracts.notifications.is_for`).
Live events come from a core NATS subscription; `Last-Event-ID` (a global position) first replays
what was missed from the store. The caller's access is re-checked as the stream runs
(StreamAccess), and each user may hold only so many streams open (stream_quota.py)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any
from uuid import UUID

import anyio
from fastapi import APIRouter, Header, Request
from nats.aio.msg import Msg
from pydantic import ValidationError
from sse_starlette.sse import EventSourceResponse

from libs.contracts.notifications import is_for
from libs.contracts.ticket_visibility import Viewer, may_see_event
from libs.events.catalog.tickets import TicketCreated
from libs.events.consumers import Consumer, HandlerContext
from libs.events.envelope import Envelope
from libs.events.errors import ServiceError
from libs.events.registry import REGISTRY
from libs.events.runtime import Deps
from libs.events.store import UnknownPosition, load_envelope
from services.gateway.auth import Credential, CurrentUser, Principal, authenticate, may_use_api
from services.gateway.deps import DepsDep
from services.gateway.errors import error_responses
from services.gateway.events_api import parse_position
from services.gateway.stream_quota import StreamQuota, expiry_for

router = APIRouter(prefix="/api/v1", tags=["events"])
log = logging.getLogger(__name__)

QUEUE_LIMIT = 1000
CATEGORIES = ("ticket", "notification")
"""The event categories the stream subscribes to; `may_see` decides each event."""
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
    """Whether the stream shows `who` this event: a notification only to its own user; a
    ticket event by the ticket policy; nothing else."""
    if envelope.type.startswith("notification."):
        return is_for(who.user_id, envelope.data)
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


class StreamAccess:
    """The caller of one open stream, re-read from its session or token as the stream runs:
    before each event and every `recheck_s` while idle. Logged out, revoked, expired or
    stripped of API access, it is None from then on and the stream ends; a changed role
    decides what is sent from the next event on."""

    def __init__(self, deps: Deps, secret: bytes, credential: Credential, who: Principal) -> None:
        self.deps = deps
        self.secret = secret
        self.credential = credential
        self.who: Principal | None = who

    async def current(self) -> Principal | None:
        if self.who is None:
            return None
        try:
            # not a use of the session: an open tab must not keep it from idling out
            again = await authenticate(self.deps, self.secret, self.credential, touch=False)
        except Exception:
            log.warning("could not re-check a live stream's caller; closing it", exc_info=True)
            again = None
        self.who = again if may_use_api(again) else None
        return self.who


@router.get("/stream", response_class=EventSourceResponse, responses=error_responses(429))
async def stream(
    request: Request,
    deps: DepsDep,
    who: CurrentUser,
    last_event_id: Annotated[str | None, Header(max_length=20)] = None,
) -> EventSourceResponse:
    """Live ticket events for the caller, and their own notifications (SSE). Reconnect with
    Last-Event-ID to catch up. The stream ends when its session or token stops being valid; a
    role change applies at once.
    429 TOO_MANY_STREAMS when the caller already holds OPSLEDGER_STREAMS_PER_USER streams."""
    resume = parse_position(last_event_id) if last_event_id is not None else None
    recheck_s = deps.settings.stream_recheck_s
    quota = StreamQuota(
        deps.pool, per_user=deps.settings.streams_per_user, expiry_s=expiry_for(recheck_s)
    )
    access = StreamAccess(deps, request.app.state.secret, Credential.of(request), who)
    held = await quota.open(who.user_id)
    queue: asyncio.Queue[Envelope] = asyncio.Queue(QUEUE_LIMIT)

    async def on_msg(msg: Msg) -> None:
        with contextlib.suppress(ValidationError, ValueError, asyncio.QueueFull):
            queue.put_nowait(load_envelope(msg.data))

    subscriptions = []
    try:
        for category in CATEGORIES:
            subscriptions.append(
                await deps.nc.subscribe(deps.settings.event_subject_filter(category), cb=on_msg)
            )
    except BaseException:
        for made in subscriptions:
            with contextlib.suppress(Exception):
                await made.unsubscribe()
        await quota.close(held)
        raise

    requesters = Requesters(deps)

    async def visible(envelope: Envelope) -> bool | None:
        """Whether to send it to the caller as they are now; None: their access ended."""
        current = await access.current()
        if current is None:
            return None
        return await may_see(requesters, current, envelope)

    checked_at = time.monotonic()

    async def still_open() -> bool:
        """Every `recheck_s`: whether the caller still holds their access (and if so, the
        heartbeat that keeps this stream counted)."""
        nonlocal checked_at
        if time.monotonic() - checked_at < recheck_s:
            return True
        if await access.current() is None:
            return False
        try:
            await quota.beat(held, who.user_id)
        except ServiceError:
            return False  # its row expired and the cap is full again: it may not run uncounted
        except Exception:
            log.warning("stream %s: heartbeat failed", held, exc_info=True)
        checked_at = time.monotonic()
        return True

    async def frames() -> AsyncIterator[dict[str, str]]:
        sent: set[UUID] = set()
        try:
            if resume is not None:
                with contextlib.suppress(UnknownPosition):
                    cursor = await deps.store.cursor_at(resume)
                    while True:
                        batch = await deps.store.read_batch(cursor, limit=500)
                        for envelope in batch.events:
                            sent.add(envelope.id)
                            shown = await visible(envelope)
                            if shown is None:
                                return
                            if shown:
                                yield _frame(envelope)
                            if not await still_open():
                                return
                        cursor = batch.cursor
                        if len(batch.events) < 500:
                            break
            while not await request.is_disconnected():
                if not await still_open():
                    return
                try:
                    envelope = await asyncio.wait_for(queue.get(), timeout=min(1.0, recheck_s))
                except TimeoutError:
                    continue
                if envelope.id in sent:
                    continue
                shown = await visible(envelope)
                if shown is None:
                    return
                if shown:
                    yield _frame(envelope)
        finally:
            # the response is being cancelled (the client left): without the shield these
            # awaits would be cancelled too and the stream would count until its row expires
            with anyio.move_on_after(5, shield=True):
                for subscription in subscriptions:
                    with contextlib.suppress(Exception):
                        await subscription.unsubscribe()
                with contextlib.suppress(Exception):
                    await quota.close(held)

    return EventSourceResponse(frames(), ping=PING_S)
