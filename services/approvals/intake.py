"""The approvals service's intake (`approvals-locks`, `approvals-jobs`, `approvals-timers`):
what makes it act. A gated firing is announced twice,
by the lock the tickets service took in the triggering append (`ticket.approval_requested`) and
by the job the rules service queued (`job.queued` with a gate); the first one seen opens the
request and the second finds it there. The request's durable timers come back here as
`approval.expiry_due` and `approval.escalation_due`."""

from __future__ import annotations

from typing import Any

from libs.events.catalog.approvals import ApprovalEscalationDue, ApprovalExpiryDue
from libs.events.catalog.rules import JobQueued
from libs.events.catalog.tickets import TicketApprovalRequested
from libs.events.consumers import Consumer, HandlerContext
from libs.rules.firing import approval_id
from libs.rules.gate import ticket_before
from services.approvals.domain import Firing
from services.approvals.handlers import ApprovalCommands


def _commands(ctx: HandlerContext) -> ApprovalCommands:
    return ApprovalCommands.for_handler(ctx)


async def on_lock(ctx: HandlerContext, event: TicketApprovalRequested) -> None:
    details = event.details
    gate = details.get("approval")
    if not isinstance(gate, dict) or not details.get("job_id"):
        return  # a lock not taken by a gated rule (none is written so far)
    envelope = ctx.envelope
    history = await ctx.store.read_stream(
        envelope.stream_id, to_version=envelope.version, conn=ctx.conn
    )
    ticket = ticket_before(history, ctx.store.registry) or {}
    firing = Firing(
        approval_id=event.approval_id,
        job_id=str(details["job_id"]),
        rule_id=str(details["rule_id"]),
        rule_version=int(details["rule_version"]),
        rule_name=str(details.get("rule_name", "")),
        actions=event.action,
        gate=gate,
        at=envelope.recorded_at,
        ticket=envelope.stream_id.removeprefix("ticket-"),
        requester_id=ticket.get("requester_id"),
    )
    await _commands(ctx).open(ctx.conn, firing, meta=ctx.metadata)


async def on_job_queued(ctx: HandlerContext, event: JobQueued) -> None:
    if event.approval is None or event.mode != "active":
        return
    ticket: dict[str, Any] = dict(event.context.get("ticket") or {})
    rule: dict[str, Any] = dict(event.context.get("rule") or {})
    firing = Firing(
        approval_id=approval_id(event.job_id),
        job_id=event.job_id,
        rule_id=event.rule_id,
        rule_version=event.rule_version,
        rule_name=str(rule.get("name", "")),
        actions=", ".join(str(a.get("type")) for a in event.actions),
        gate=event.approval,
        at=ctx.envelope.recorded_at,
        ticket=event.ticket,
        incident=event.incident,
        requester_id=ticket.get("requester_id"),
    )
    await _commands(ctx).open(ctx.conn, firing, meta=ctx.metadata)


async def on_expiry_due(ctx: HandlerContext, _event: ApprovalExpiryDue) -> None:
    await _commands(ctx).expire(ctx.conn, _approval_of(ctx), meta=ctx.metadata)


async def on_escalation_due(ctx: HandlerContext, _event: ApprovalEscalationDue) -> None:
    await _commands(ctx).escalate(ctx.conn, _approval_of(ctx), meta=ctx.metadata)


def _approval_of(ctx: HandlerContext) -> str:
    return ctx.envelope.stream_id.removeprefix("approval-")


LOCKS = Consumer(
    name="approvals-locks",
    handlers={TicketApprovalRequested.event_type: on_lock},
    replayable=False,
    exact=True,
)
GATED_JOBS = Consumer(
    name="approvals-jobs",
    handlers={JobQueued.event_type: on_job_queued},
    replayable=False,
    exact=True,
)
TIMERS = Consumer(
    name="approvals-timers",
    handlers={
        ApprovalExpiryDue.event_type: on_expiry_due,
        ApprovalEscalationDue.event_type: on_escalation_due,
    },
    replayable=False,
)
INTAKE = (LOCKS, GATED_JOBS, TIMERS)
"""One consumer per kind of event the service reacts to, so the bus sends each only that kind
(not every ticket's and every job's other events)."""
