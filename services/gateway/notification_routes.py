"""Notification routes: a signed-in user's own in-app notifications, asked of the executor
(NATS request/reply) by its contract, `libs.contracts.notifications`. Someone else's
notification reads as not found (404), never forbidden. No executor logic lives here."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request

from libs.contracts import notifications as contract
from services.gateway.auth import CurrentUser
from services.gateway.deps import DepsDep
from services.gateway.errors import error_responses
from services.gateway.forwarding import Cursor, ask_as, request_of

router = APIRouter(
    prefix="/api/v1", tags=["notifications"], responses=error_responses(502, 503, 504)
)

NotificationId = Annotated[
    str, Path(pattern=contract.NOTIFICATION_ID, description="a notification's id (32 hex digits)")
]
PageLimit = Annotated[
    int, Query(ge=1, le=contract.MAX_PAGE, description="the most items on this page")
]


@router.get("/notifications")
async def list_notifications(
    deps: DepsDep,
    request: Request,
    who: CurrentUser,
    unread: bool = False,
    limit: PageLimit = 50,
    cursor: Cursor = None,
) -> contract.NotificationPage:
    """The caller's own notifications, newest first (`unread=true`: only those not read yet)."""
    query = request_of(contract.NotificationsListIn, unread=unread, limit=limit, cursor=cursor)
    return await ask_as(deps, request, who, contract.NOTIFICATIONS_LIST, query)


@router.post("/notifications/{id}/read")
async def read_notification(
    deps: DepsDep, request: Request, who: CurrentUser, id: NotificationId
) -> contract.NotificationOut:
    """Mark one of the caller's notifications read (reading it again changes nothing); 404
    NOT_FOUND for one that is not theirs."""
    body = request_of(contract.NotificationIdIn, id=id)
    return await ask_as(deps, request, who, contract.NOTIFICATIONS_READ, body)
