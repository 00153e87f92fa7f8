"""`executor-notifications`: each notification as its notification.* events leave it, in
`executor.notifications` (replayable; its own appends apply it inline, so a user reads what
was just written)."""

from __future__ import annotations

from libs.events.catalog.notifications import NotificationCreated, NotificationRead
from libs.events.consumers import Consumer, HandlerContext


async def on_created(ctx: HandlerContext, event: NotificationCreated) -> None:
    await ctx.conn.execute(
        "INSERT INTO executor.notifications (notification_id, position, user_id, kind, message, "
        "ticket, approval_id, job_id, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) "
        "ON CONFLICT (notification_id) DO NOTHING",
        event.notification_id,
        ctx.envelope.position,
        event.user_id,
        event.kind,
        event.message,
        event.ticket,
        event.approval_id,
        event.job_id,
        ctx.envelope.recorded_at,
    )


async def on_read(ctx: HandlerContext, event: NotificationRead) -> None:
    await ctx.conn.execute(
        "UPDATE executor.notifications SET read_at = $2 "
        "WHERE notification_id = $1 AND read_at IS NULL",
        event.notification_id,
        ctx.envelope.recorded_at,
    )


NOTIFICATIONS_PROJECTION = Consumer(
    name="executor-notifications",
    handlers={NotificationCreated.event_type: on_created, NotificationRead.event_type: on_read},
    tables=("executor.notifications",),
)
