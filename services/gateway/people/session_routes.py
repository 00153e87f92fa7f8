"""The caller's own sessions: list them (the current one marked, a page at a time) and end any
of them, e.g. one left signed in on a lost laptop. Listed from the gateway's authentication read
model, which knows each session's last use; ending one is the people service's command."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, status
from pydantic import BaseModel

from libs.contracts import people as contract
from libs.events.errors import ServiceError
from libs.events.inputs import input_problem
from services.gateway.auth import CurrentUser
from services.gateway.deps import DepsDep
from services.gateway.people import queries
from services.gateway.people.calls import command

router = APIRouter()
SessionId = Annotated[str, Path(min_length=1, max_length=64)]
Limit = Annotated[int, Query(ge=1, le=200, description="the most sessions on this page")]
Cursor = Annotated[
    str | None, Query(max_length=200, description="next_cursor of the previous page")
]
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def encode_cursor(last: queries.SessionRow) -> str:
    """Opaque: base64 of `{"before": [started_at in epoch microseconds, session id]}`."""
    position = [(last.started_at - _EPOCH) // _MICROSECOND, last.id]
    return base64.urlsafe_b64encode(json.dumps({"before": position}).encode()).decode()


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """The keyset position in a cursor this list gave out; 422 INVALID_CURSOR for any other."""
    try:
        decoded: Any = json.loads(base64.b64decode(cursor, altchars=b"-_", validate=True))
        micros, session_id = decoded["before"]
        if isinstance(micros, int) and not isinstance(micros, bool) and _an_id(session_id):
            return _EPOCH + micros * _MICROSECOND, session_id
    except (ValueError, TypeError, KeyError, OverflowError):
        pass
    raise ServiceError(422, "INVALID_CURSOR", "the cursor is not one this list gave out")


def _an_id(value: object) -> bool:
    return isinstance(value, str) and 0 < len(value) <= 64 and input_problem(value) is None


class SessionOut(BaseModel):
    id: str
    started_at: datetime
    last_seen_at: datetime
    expires_at: datetime
    current: bool
    """This request's own session."""


class SessionPage(BaseModel):
    items: list[SessionOut]
    next_cursor: str | None = None


@router.get("/sessions", response_model=SessionPage)
async def list_sessions(
    deps: DepsDep, who: CurrentUser, limit: Limit = 50, cursor: Cursor = None
) -> SessionPage:
    """The caller's sessions that still work, newest first, a page at a time (follow
    `next_cursor`; 422 INVALID_CURSOR for a cursor this list did not give out); `current`
    marks this one."""
    before = decode_cursor(cursor) if cursor else None
    rows = await queries.live_sessions(deps.pool, who.user_id, limit=limit + 1, before=before)
    page, more = rows[:limit], len(rows) > limit
    items = [
        SessionOut(
            id=r.id,
            started_at=r.started_at,
            last_seen_at=r.last_seen_at,
            expires_at=r.expires_at,
            current=r.id == who.session_id,
        )
        for r in page
    ]
    return SessionPage(items=items, next_cursor=encode_cursor(page[-1]) if more else None)


@router.delete("/sessions/{session_id}", status_code=status.HTTP_204_NO_CONTENT)
async def end_session(
    request: Request, deps: DepsDep, who: CurrentUser, session_id: SessionId
) -> None:
    """End one of the caller's sessions (404 for another's); its cookie stops working from the
    next request on. Ending it twice is a no-op."""
    await command(
        deps,
        contract.REVOKE_SESSION,
        contract.SessionRef(session_id=session_id),
        who=who,
        correlation_id=request.headers.get("x-correlation-id"),
    )
