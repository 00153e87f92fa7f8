"""`executor-announce`: an approval request that names chat endpoints (`announce`) is posted to
them with a signed approve / reject link per approver. The executor queues that post as a job of
its own (`job-<sha256 of the request>`: one per request, appended with "no stream yet", so a
redelivered event or a second replica queues nothing more), so a failed post is retried and
dead-lettered, and shows in `GET /jobs`, like any other."""

from __future__ import annotations

import hashlib

from libs.events.catalog.approvals import ApprovalRequested
from libs.events.catalog.rules import JobQueued
from libs.events.consumers import Consumer, HandlerContext
from libs.events.store import NO_STREAM, ConcurrencyError
from services.executor import history
from services.executor.actions.announce import NAME

TAG = "opsledger.announce.v1/"


def announce_job_id(approval_id: str) -> str:
    return hashlib.sha256(f"{TAG}{approval_id}".encode()).hexdigest()


def announcement(event: ApprovalRequested, *, trigger_event_id: object) -> JobQueued:
    job = announce_job_id(event.approval_id)
    return JobQueued.model_validate(
        {
            "job_id": job,
            "rule_id": event.rule_id,
            "rule_version": event.rule_version,
            "trigger": "approval.requested",
            "trigger_event_id": trigger_event_id,
            "ticket": event.ticket,
            "incident": event.incident,
            "mode": "active",
            "actions": [{"type": NAME, "params": {"webhook_id": w}} for w in event.announce],
            "context": {
                "ticket": {"key": event.ticket} if event.ticket else {},
                "rule": {"id": event.rule_id, "version": event.rule_version},
                "job": {"id": job},
                "approval": {
                    "id": event.approval_id,
                    "summary": event.summary,
                    "expires_at": event.expires_at.isoformat(),
                    "approvers": list(event.approvers),
                },
            },
        }
    )


async def on_approval_requested(ctx: HandlerContext, event: ApprovalRequested) -> None:
    if not event.announce:
        return
    queued = announcement(event, trigger_event_id=ctx.envelope.id)
    try:
        await ctx.append(history.job_stream(queued.job_id), [queued], expected_version=NO_STREAM)
    except ConcurrencyError:
        return  # queued already (a redelivery, or another replica): that is the dedup


ANNOUNCE = Consumer(
    name="executor-announce",
    handlers={ApprovalRequested.event_type: on_approval_requested},
    replayable=False,
)
