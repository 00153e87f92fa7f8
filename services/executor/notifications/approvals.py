"""`executor-approval-notices`: an approval waiting is a notification for each of its approvers
(the named users and the active holders of its roles, never the ticket's requester), kind
`approval_waiting`; an escalated one, for each user it names as notified, kind
`approval_escalated`. Reacts (appends), so it is not replayed; its ids make a redelivery, a
retry or a second replica write nothing twice.

The approvers are those the approvals service resolved when it opened the request
(`approval.requested.approvers`); only a request that names none is resolved again here, from
`executor.people`."""

from __future__ import annotations

from libs.events.catalog.approvals import ApprovalEscalated, ApprovalRequested
from libs.events.consumers import Consumer, HandlerContext
from services.executor.notifications.writes import Notice, Writer
from services.executor.people import approvers


def _about(requested: ApprovalRequested) -> str:
    what = requested.summary or f"rule {requested.rule_id}"
    return f" on {requested.ticket}: {what}" if requested.ticket else f": {what}"


async def on_requested(ctx: HandlerContext, event: ApprovalRequested) -> None:
    # whom the approvals service found could vote when it opened the request (the same list the
    # chat announcement gives links to); resolved here only for a request that names nobody
    users = sorted(set(event.approvers) - {event.requester_id or ""}) or await approvers(
        ctx.conn, users=event.users, roles=event.roles, exclude=event.requester_id
    )
    notice = Notice(
        kind="approval_waiting",
        message=f"Your approval is needed{_about(event)}",
        ticket=event.ticket,
        approval_id=event.approval_id,
    )
    cause = ("approval", event.approval_id, notice.kind)
    await Writer(ctx.store, ctx.settings).notify(
        ctx.conn, users=users, notice=notice, cause=cause, metadata=ctx.metadata
    )


async def on_escalated(ctx: HandlerContext, event: ApprovalEscalated) -> None:
    envelope = ctx.envelope
    first = await ctx.store.read_stream(envelope.stream_id, to_version=1, conn=ctx.conn)
    requested = ctx.store.registry.load(first[0]) if first else None
    if not isinstance(requested, ApprovalRequested):
        raise LookupError(f"{envelope.stream_id} does not start with approval.requested")
    users = sorted(set(event.notified) - {requested.requester_id})
    notice = Notice(
        kind="approval_escalated",
        message=f"Still waiting for your approval{_about(requested)}",
        ticket=requested.ticket,
        approval_id=requested.approval_id,
    )
    # each escalation (by its version in the request's stream) notifies once
    cause = ("approval", requested.approval_id, notice.kind, envelope.version)
    await Writer(ctx.store, ctx.settings).notify(
        ctx.conn, users=users, notice=notice, cause=cause, metadata=ctx.metadata
    )


APPROVAL_NOTICES = Consumer(
    name="executor-approval-notices",
    handlers={
        ApprovalRequested.event_type: on_requested,
        ApprovalEscalated.event_type: on_escalated,
    },
    replayable=False,
)
