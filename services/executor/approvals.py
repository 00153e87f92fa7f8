"""`executor-approvals`: an approval request's decision moves its jobs on. Approved, each job
is queued to run (`job.approved`); rejected or expired, each ends skipped with that reason. The
approvals service released the ticket's lock in the transaction that decided, so an approved
job's ticket actions find the ticket unlocked.

A job whose stream is not there yet (the rules service has not queued it, however unlikely
after a human decision) is an error the runtime retries, never a decision dropped."""

from __future__ import annotations

import uuid
from typing import Final

from libs.events.catalog.approvals import ApprovalDecided
from libs.events.consumers import Consumer, Dispatcher, HandlerContext, append_and_project
from services.executor import domain, history
from services.executor.projection import JOBS_PROJECTION

_IDS: Final = uuid.UUID("c4e6a8b0-2d4f-4a6c-8e0a-3c5e7a9b1d2f")


class JobNotQueuedYet(RuntimeError):
    """The decided request names a job whose stream does not exist yet: retried later."""


async def on_approval_decided(ctx: HandlerContext, event: ApprovalDecided) -> None:
    approval_id = ctx.envelope.stream_id.removeprefix("approval-")
    jobs = Dispatcher(JOBS_PROJECTION, "executor", ctx.store, ctx.settings)
    for job_id in event.job_ids:
        job, _stream = await history.load(ctx.store, job_id, conn=ctx.conn)
        if job is None:
            raise JobNotQueuedYet(f"job {job_id} of approval {approval_id} is not queued yet")
        events = domain.decide_approval(job, approval_id=approval_id, outcome=event.outcome)
        if not events:
            continue
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


APPROVALS = Consumer(
    name="executor-approvals",
    handlers={ApprovalDecided.event_type: on_approval_decided},
    replayable=False,
)
