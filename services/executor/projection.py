"""The executor's read model, replayable, in schema `executor`: jobs (state, whether a worker may
claim one now, the JobOut shown: `JOBS_PROJECTION`) and registered webhook endpoints
(`WEBHOOKS_PROJECTION`).

A job that becomes claimable NOTIFYs `JOBS_CHANNEL` in the same transaction, so the workers of
every replica hear of it once it has committed (push, not poll); which one gets it is decided by
the claim (SKIP LOCKED on the row, then the job stream's expected version)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Final

from libs.events.catalog import rules as job_events
from libs.events.catalog.executor import WebhookChanged, WebhookRegistered, WebhookRemoved
from libs.events.consumers import Consumer, HandlerContext
from libs.events.registry import DomainEvent
from services.executor import history
from services.executor.domain import Job, evolve

JOBS_CHANNEL: Final = "executor_jobs"

JOB_EVENTS: Final[tuple[type[DomainEvent], ...]] = (
    job_events.JobQueued,
    job_events.JobApprovalRequested,
    job_events.JobApproved,
    job_events.JobStarted,
    job_events.JobStepSucceeded,
    job_events.JobStepFailed,
    job_events.JobRetryScheduled,
    job_events.JobRetryDue,
    job_events.JobLeaseExpired,
    job_events.JobSucceeded,
    job_events.JobSkipped,
    job_events.JobDeadLettered,
    job_events.JobRetryRequested,
)

_UPSERT = """
INSERT INTO executor.jobs (job_id, position, rule_id, ticket, state, claimable, version, job,
    updated_at, lease_until)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8::text::jsonb, $9, $10)
ON CONFLICT (job_id) DO UPDATE SET state = excluded.state, claimable = excluded.claimable,
    version = excluded.version, job = excluded.job, updated_at = excluded.updated_at,
    lease_until = excluded.lease_until
"""


_KNOWN: ContextVar[Job | None] = ContextVar("executor_known_job", default=None)


@contextlib.contextmanager
def known_state(job: Job) -> Iterator[None]:
    """The job as the executor folded it just before appending to its stream: the inline
    projection of that append evolves it instead of reading the whole stream again."""
    token = _KNOWN.set(job)
    try:
        yield
    finally:
        _KNOWN.reset(token)


async def _folded(ctx: HandlerContext, event: DomainEvent) -> tuple[Job | None, int]:
    """The job right after this event, and the position of its first event. The executor's
    own append evolves the state it folded from the store just before appending (each event of
    a multi-event append in turn); anything else (another service's append, delivered by the
    bus; a replay) folds the stream as the store has it, never the bus's copy of the event."""
    envelope = ctx.envelope
    known = _KNOWN.get()
    if (
        known is not None
        and history.job_stream(known.id) == envelope.stream_id
        and known.version == envelope.version - 1
    ):
        job = evolve(known, event, version=envelope.version, at=envelope.recorded_at)
        _KNOWN.set(job)  # the next event of the same append follows from this state
        # the job's row exists (it was claimed, or retried, through it): the position given
        # here is only used if it does not, and then only orders claims
        return job, envelope.position
    stream = await ctx.store.read_stream(
        envelope.stream_id, to_version=envelope.version, conn=ctx.conn
    )
    return history.fold(stream, ctx.store.registry), (
        stream[0].position if stream else envelope.position
    )


async def on_job_event(ctx: HandlerContext, event: DomainEvent) -> None:
    """Fold the job up to this event and store it (a job has a handful of events)."""
    job, position = await _folded(ctx, event)
    if job is None:
        return
    await ctx.conn.execute(
        _UPSERT,
        job.id,
        position,
        job.queued.rule_id,
        job.queued.ticket,
        job.state,
        job.claimable,
        job.version,
        job.out().model_dump_json(),
        job.updated_at,
        job.lease.until if job.state == "running" and job.lease is not None else None,
    )
    if job.claimable:
        await ctx.conn.execute("SELECT pg_notify($1, $2)", JOBS_CHANNEL, job.id)


async def on_webhook_registered(ctx: HandlerContext, event: WebhookRegistered) -> None:
    at = ctx.envelope.recorded_at
    await ctx.conn.execute(
        "INSERT INTO executor.webhooks (webhook_id, position, name, kind, url, secret, events, "
        "include_internal, created_at, updated_at) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7::text::jsonb, $8, $9, $9) "
        "ON CONFLICT (webhook_id) DO NOTHING",
        event.webhook_id,
        ctx.envelope.position,
        event.name,
        event.kind,
        event.url,
        event.secret,
        None if event.events is None else _json(event.events),
        event.include_internal,
        at,
    )


async def on_webhook_changed(ctx: HandlerContext, event: WebhookChanged) -> None:
    await ctx.conn.execute(
        "UPDATE executor.webhooks SET name = $2, kind = $3, url = $4, secret = $5, "
        "events = $6::text::jsonb, include_internal = $7, updated_at = $8 WHERE webhook_id = $1",
        event.webhook_id,
        event.name,
        event.kind,
        event.url,
        event.secret,
        None if event.events is None else _json(event.events),
        event.include_internal,
        ctx.envelope.recorded_at,
    )


async def on_webhook_removed(ctx: HandlerContext, event: WebhookRemoved) -> None:
    await ctx.conn.execute(
        "UPDATE executor.webhooks SET removed = true, secret = NULL, updated_at = $2 "
        "WHERE webhook_id = $1",
        event.webhook_id,
        ctx.envelope.recorded_at,
    )


def _json(value: list[str]) -> str:
    return json.dumps(value)


JOBS_PROJECTION = Consumer(
    name="executor-jobs",
    handlers={cls.event_type: on_job_event for cls in JOB_EVENTS},
    tables=("executor.jobs",),
)
WEBHOOKS_PROJECTION = Consumer(
    name="executor-webhooks",
    handlers={
        WebhookRegistered.event_type: on_webhook_registered,
        WebhookChanged.event_type: on_webhook_changed,
        WebhookRemoved.event_type: on_webhook_removed,
    },
    tables=("executor.webhooks",),
)
"""Two consumers, one category each, so each subscribes to its own subjects only."""
