"""`executor-approvals`: an approval request's decision moves its jobs on. Rejected or expired,
each job ends skipped with that reason. Approved, each job is queued to run (`job.approved`) as
soon as its ticket holds no other lock: a job whose ticket another gate still locks waits for
that one to be decided (its status changes would only be refused meanwhile), then runs.

Three events can be the last piece, so all three look: `approval.decided` (the request),
`job.approval_requested` (the job, queued by the rules service perhaps after the decision) and
`ticket.approval_decided` (another lock on the ticket released). Each reads the others' facts
from the store, never from a table of another service; what it appends is decided against the
job's stream version, so two of them racing append once."""

from __future__ import annotations

import uuid
from typing import Final

from libs.events.catalog.approvals import ApprovalDecided
from libs.events.catalog.rules import JobApprovalRequested
from libs.events.catalog.tickets import TicketApprovalDecided
from libs.events.consumers import Consumer, Dispatcher, HandlerContext, append_and_project
from libs.events.store import ConcurrencyError
from libs.rules.gate import ticket_before
from services.executor import domain, history
from services.executor.projection import JOBS_PROJECTION

_IDS: Final = uuid.UUID("c4e6a8b0-2d4f-4a6c-8e0a-3c5e7a9b1d2f")


async def _decision(ctx: HandlerContext, approval_id: str) -> ApprovalDecided | None:
    """The request's decision, from its stream (None while it is pending)."""
    events = await ctx.store.read_stream(
        f"approval-{approval_id}", types=[ApprovalDecided.event_type], conn=ctx.conn
    )
    loaded = [ctx.store.registry.load(e) for e in events]
    return next((e for e in loaded if isinstance(e, ApprovalDecided)), None)


async def _other_locks(ctx: HandlerContext, ticket: str | None, approval_id: str) -> list[str]:
    """The ticket's pending locks other than this request's."""
    if ticket is None:
        return []
    stream = await ctx.store.read_stream(f"ticket-{ticket}", conn=ctx.conn)
    view = ticket_before(stream, ctx.store.registry) or {}
    return [a for a in view.get("pending_approvals", []) if a != approval_id]


async def settle(ctx: HandlerContext, job_id: str, approval_id: str) -> None:
    """Move the job on if its request is decided (and, approved, its ticket is free)."""
    job, _stream = await history.load(ctx.store, job_id, conn=ctx.conn)
    if job is None or job.state != "pending_approval" or job.approval_id != approval_id:
        return  # not queued yet (its own job.approval_requested settles it), or settled
    decided = await _decision(ctx, approval_id)
    if decided is None:
        return
    if decided.outcome == "approved" and await _other_locks(ctx, job.queued.ticket, approval_id):
        return  # waits for the other gate: its release settles this job
    events = domain.decide_approval(job, approval_id=approval_id, outcome=decided.outcome)
    if not events:
        return
    jobs = Dispatcher(JOBS_PROJECTION, "executor", ctx.store, ctx.settings)
    try:
        await append_and_project(
            ctx.store,
            ctx.conn,
            [jobs],
            history.job_stream(job_id),
            events,
            expected_version=job.version,
            metadata=ctx.metadata,
            ids=[uuid.uuid5(_IDS, f"{approval_id}/{job_id}/{i}") for i in range(len(events))],
        )
    except ConcurrencyError:
        return  # another of the three settled it meanwhile (or the ids exist: it is done)


async def on_approval_decided(ctx: HandlerContext, event: ApprovalDecided) -> None:
    approval_id = ctx.envelope.stream_id.removeprefix("approval-")
    for job_id in event.job_ids:
        await settle(ctx, job_id, approval_id)


async def on_job_waits(ctx: HandlerContext, event: JobApprovalRequested) -> None:
    await settle(ctx, ctx.envelope.stream_id.removeprefix("job-"), event.approval_id)


async def on_lock_released(ctx: HandlerContext, _event: TicketApprovalDecided) -> None:
    """Another lock of this ticket is gone: its approved jobs that waited for it may run."""
    ticket = ctx.envelope.stream_id.removeprefix("ticket-")
    rows = await ctx.conn.fetch(
        "SELECT job_id, job->>'approval_id' AS approval_id FROM executor.jobs "
        "WHERE ticket = $1 AND state = 'pending_approval' AND job->>'approval_id' IS NOT NULL",
        ticket,
    )
    for row in rows:
        await settle(ctx, row["job_id"], row["approval_id"])


APPROVALS = Consumer(
    name="executor-approvals",
    handlers={ApprovalDecided.event_type: on_approval_decided},
    replayable=False,
)
WAITING_JOBS = Consumer(
    name="executor-approval-waits",
    handlers={JobApprovalRequested.event_type: on_job_waits},
    replayable=False,
    exact=True,
)
RELEASED_LOCKS = Consumer(
    name="executor-lock-releases",
    handlers={TicketApprovalDecided.event_type: on_lock_released},
    replayable=False,
    exact=True,
)
"""Three consumers, one per event, so the bus sends each only its own kind: a job's or a
ticket's every other event never reaches them."""
