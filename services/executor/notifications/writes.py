"""The write side of notifications: `notify` (one notification.created per user, its id from
what caused it, so a repeat appends nothing) and `mark_read` (a user's own, once), each
appended with `executor-notifications` applied in the same transaction."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from libs.contracts.notifications import NotificationOut, is_for
from libs.events.catalog.notifications import (
    MAX_MESSAGE,
    NotificationCreated,
    NotificationKind,
    NotificationRead,
    event_id,
    notification_id,
    notification_stream,
)
from libs.events.consumers import Dispatcher, append_and_project
from libs.events.db import Conn
from libs.events.envelope import Envelope, Metadata
from libs.events.settings import Settings
from libs.events.store import NO_STREAM, EventStore
from services.executor.notifications.projection import NOTIFICATIONS_PROJECTION
from services.executor.refusals import Refusal


@dataclass(frozen=True)
class Notice:
    """What a notification says and is about, before it is addressed to a user."""

    kind: NotificationKind
    message: str
    ticket: str | None = None
    approval_id: str | None = None
    job_id: str | None = None
    step: int | None = None


@dataclass(frozen=True)
class Writer:
    """Appends to notification streams in a caller's transaction."""

    store: EventStore
    settings: Settings

    @property
    def _projections(self) -> list[Dispatcher]:
        return [Dispatcher(NOTIFICATIONS_PROJECTION, "executor", self.store, self.settings)]

    async def notify(
        self,
        conn: Conn,
        *,
        users: Sequence[str],
        notice: Notice,
        cause: tuple[str | int, ...],
        metadata: Metadata,
    ) -> list[str]:
        """One notification per user (id: `cause` and the user); their ids. Appending one that
        exists already (a retried step, a redelivered event, another replica) is a no-op."""
        made: list[str] = []
        for user in users:
            nid = notification_id(*cause, user)
            created = NotificationCreated(
                notification_id=nid,
                user_id=user,
                kind=notice.kind,
                message=notice.message[:MAX_MESSAGE],
                ticket=notice.ticket,
                approval_id=notice.approval_id,
                job_id=notice.job_id,
                step=notice.step,
            )
            await append_and_project(
                self.store,
                conn,
                self._projections,
                notification_stream(nid),
                [created],
                expected_version=NO_STREAM,
                metadata=metadata,
                ids=[event_id(nid, "created")],
            )
            made.append(nid)
        return made

    async def mark_read(
        self, conn: Conn, *, user_id: str, nid: str, metadata: Metadata
    ) -> NotificationOut:
        """`user_id`'s notification `nid`, read (NOT_FOUND when there is none of theirs: someone
        else's reads as missing, so ids leak nothing). Read already, nothing is appended."""
        stream = await self.store.read_stream(notification_stream(nid), conn=conn)
        if not stream or stream[0].type != NotificationCreated.event_type:
            raise _missing()
        if not is_for(user_id, stream[0].data):
            raise _missing()
        read = next((e for e in stream if e.type == NotificationRead.event_type), None)
        if read is None:
            [read] = await append_and_project(
                self.store,
                conn,
                self._projections,
                notification_stream(nid),
                [NotificationRead(notification_id=nid, user_id=user_id)],
                expected_version=stream[-1].version,
                metadata=metadata,
                ids=[event_id(nid, "read")],  # a concurrent read of the same one: one event
            )
        return shown(stream[0], read)


def shown(created: Envelope, read: Envelope | None) -> NotificationOut:
    """A notification as its events say (the same as its projected row)."""
    data = created.data
    return NotificationOut(
        id=str(data["notification_id"]),
        kind=data["kind"],
        message=str(data["message"]),
        ticket=data.get("ticket"),
        approval_id=data.get("approval_id"),
        job_id=data.get("job_id"),
        read=read is not None,
        read_at=read.recorded_at if read is not None else None,
        created_at=created.recorded_at,
    )


def _missing() -> Refusal:
    return Refusal("NOT_FOUND", "the notification was not found")
