"""The executor's contract for in-app notifications: a user's own list (newest first, keyset
pages, `unread` to filter) and marking one read, and the one policy of who sees a notification
(`is_for`: the list, the read, and the gateway's live stream all ask it).

A user only ever reaches their own: someone else's notification reads as not found (404), never
as forbidden, so its id leaks nothing."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any, Final

from pydantic import BaseModel, ConfigDict, Field

from libs.events.catalog.notifications import NotificationKind
from libs.events.contract import Method

MAX_PAGE: Final = 200
NOTIFICATION_ID: Final = r"^[0-9a-f]{32}$"
"""A notification's id (libs/events/catalog/notifications.notification_id)."""


def is_for(user_id: str, data: Mapping[str, Any]) -> bool:
    """Whether a notification event (its data) is for `user_id`: its own user alone, never
    anyone else, admins included."""
    owner = data.get("user_id")
    return isinstance(owner, str) and owner == user_id


class Body(BaseModel):
    """A request: unknown keys are refused."""

    model_config = ConfigDict(extra="forbid")


class NotificationsListIn(Body):
    unread: bool = False
    """Only those not read yet."""
    limit: Annotated[int, Field(ge=1, le=MAX_PAGE)] = 50
    cursor: Annotated[str, Field(max_length=500)] | None = None


class NotificationIdIn(Body):
    id: Annotated[str, Field(pattern=NOTIFICATION_ID)]


class NotificationOut(BaseModel):
    id: str
    kind: NotificationKind
    message: str
    ticket: str | None = None
    approval_id: str | None = None
    job_id: str | None = None
    read: bool
    read_at: datetime | None = None
    created_at: datetime


class NotificationPage(BaseModel):
    items: list[NotificationOut]
    next_cursor: str | None = None


# methods: `ns.rpc.executor.<name>`

NOTIFICATIONS_LIST: Method[NotificationsListIn, NotificationPage] = Method(
    "executor", "notifications.list", NotificationsListIn, NotificationPage
)
NOTIFICATIONS_READ: Method[NotificationIdIn, NotificationOut] = Method(
    "executor", "notifications.read", NotificationIdIn, NotificationOut
)
