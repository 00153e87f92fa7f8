"""Events of in-app notifications, written by the executor: one stream `notification-<id>` each.

A notification is for one user: `notification.created` (a rule's `notify` step, an approval
waiting for its approver, an escalated approval) and `notification.read` once they read it.
Ids are deterministic (`notification_id` over what caused it: a job step and the user, or an
approval, the user and the kind), so a retried step, a redelivered event or two replicas
write the same stream once. Every event names `user_id`: the live stream shows it to that user
alone (`libs.contracts.notifications.is_for`).
"""

from __future__ import annotations

import json
import uuid
from typing import Final, Literal

from pydantic import Field

from libs.events.registry import DomainEvent, event

NotificationKind = Literal["notify", "approval_waiting", "approval_escalated"]
MAX_MESSAGE: Final = 4_000
"""A notification's text is cut to this many characters."""
_IDS: Final = uuid.UUID("5f0c2b7e-8d41-4e6a-9b3c-1a7e2d9f4c60")


def notification_id(*parts: str | int) -> str:
    """The id of the notification caused by `parts` (32 hex digits), the same on every retry."""
    return uuid.uuid5(_IDS, json.dumps(parts)).hex


def notification_stream(notification_id: str) -> str:
    return f"notification-{notification_id}"


def event_id(notification_id: str, what: str) -> uuid.UUID:
    """The id of the notification's `what` event: a repeat of the append is recognised."""
    return uuid.uuid5(_IDS, f"{notification_id}/{what}")


@event("notification.created")
class NotificationCreated(DomainEvent):
    """First event of `notification-<id>`: `message` for `user_id`, and what it is about."""

    notification_id: str
    user_id: str
    kind: NotificationKind
    message: str = Field(max_length=MAX_MESSAGE)
    ticket: str | None = None
    approval_id: str | None = None
    job_id: str | None = None
    step: int | None = Field(default=None, ge=0)


@event("notification.read")
class NotificationRead(DomainEvent):
    """Its user read it (once: reading it again appends nothing)."""

    notification_id: str
    user_id: str
