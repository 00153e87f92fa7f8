"""Jobs, pure: a job's state folded from its `job-<id>` stream, and every decision the executor
takes on it (claim with a lease, a step's outcome, retry with backoff and full jitter, dead
letter, an operator's retry of a dead letter, skip for shadow). No I/O; the caller appends the
events at the version the state was folded to, so the store decides between racing replicas.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Final
from uuid import UUID, uuid5

from libs.contracts.rules import JobOut, JobState
from libs.events.catalog.rules import (
    JobApprovalRequested,
    JobApproved,
    JobDeadLettered,
    JobLeaseExpired,
    JobQueued,
    JobRetryDue,
    JobRetryRequested,
    JobRetryScheduled,
    JobSkipped,
    JobStarted,
    JobStepFailed,
    JobStepSucceeded,
    JobSucceeded,
    SkipReason,
)
from libs.events.registry import DomainEvent
from services.executor.refusals import Refusal

MAX_ERROR: Final = 2_000
"""Characters of an error kept on an event."""
_TIMER_IDS: Final = UUID("0b7e52d4-8c3e-4f7e-9d0a-6a1f3c2e9b41")


@dataclass(frozen=True)
class Lease:
    attempt: int
    worker: str
    until: datetime


@dataclass(frozen=True)
class Job:
    """A job as its stream leaves it."""

    queued: JobQueued
    created_at: datetime
    updated_at: datetime
    version: int = 1
    state: JobState = "queued"
    attempts: int = 0
    """How many times it was started (every `job.started`)."""
    round_start: int = 1
    """The attempt number the current budget of attempts began at (a retry request resets it)."""
    done: frozenset[int] = frozenset()
    lease: Lease | None = None
    next_attempt: int | None = None
    last_error: str | None = None
    approval_id: str | None = None
    approved: bool = False
    skip_reason: SkipReason | None = None

    @property
    def id(self) -> str:
        return self.queued.job_id

    @property
    def steps(self) -> int:
        return len(self.queued.actions)

    @property
    def next_step(self) -> int | None:
        """The first step not done (None when all are)."""
        return next((i for i in range(self.steps) if i not in self.done), None)

    @property
    def claimable(self) -> bool:
        """Whether a worker may claim it now: queued, and its approval gate (if any) passed."""
        gated = self.queued.approval is not None and not self.approved
        return self.state == "queued" and not gated

    def tries_used(self) -> int:
        """Attempts used out of the current budget."""
        return max(0, self.attempts - self.round_start + 1)

    def out(self) -> JobOut:
        step = self.next_step
        if step is None and self.steps:
            step = self.steps - 1
        action = self.queued.actions[step]["type"] if step is not None else None
        return JobOut(
            id=self.id,
            rule_id=self.queued.rule_id,
            rule_version=self.queued.rule_version,
            action=action,
            ticket=self.queued.ticket,
            incident=self.queued.incident,
            trigger_event_id=self.queued.trigger_event_id,
            state=self.state,
            attempts=self.attempts,
            last_error=self.last_error,
            approval_id=self.approval_id,
            created_at=self.created_at,
            updated_at=self.updated_at,
            skip_reason=self.skip_reason,
        )


def evolve(job: Job | None, event: DomainEvent, *, version: int, at: datetime) -> Job | None:
    """The job after `event` (stored at `version`, `at`); a stale timer event changes nothing."""
    if isinstance(event, JobQueued):
        return Job(queued=event, created_at=at, updated_at=at, version=version)
    if job is None:
        return None
    moved = replace(job, version=version, updated_at=at)
    match event:
        case JobApprovalRequested():
            return replace(moved, state="pending_approval", approval_id=event.approval_id)
        case JobApproved():
            return replace(moved, state="queued", approved=True, approval_id=event.approval_id)
        case JobStarted():
            lease = Lease(event.attempt, event.worker, event.lease_until)
            return replace(moved, state="running", attempts=event.attempt, lease=lease)
        case JobStepSucceeded():
            return replace(moved, done=job.done | {event.step})
        case JobStepFailed():
            return replace(moved, last_error=event.error)
        case JobRetryScheduled():
            return replace(moved, state="retry_scheduled", lease=None, next_attempt=event.attempt)
        case JobRetryDue():
            if job.state != "retry_scheduled" or job.next_attempt != event.attempt:
                return moved
            return replace(moved, state="queued", next_attempt=None)
        case JobLeaseExpired():
            if job.state != "running" or job.lease is None or job.lease.attempt != event.attempt:
                return moved
            error = f"attempt {event.attempt} stopped: its executor ({event.worker}) went away"
            return replace(moved, state="queued", lease=None, last_error=error)
        case JobSucceeded():
            return replace(moved, state="succeeded", lease=None)
        case JobSkipped():
            return replace(moved, state="skipped", lease=None, skip_reason=event.reason)
        case JobDeadLettered():
            return replace(moved, state="dead_lettered", lease=None, last_error=event.last_error)
        case JobRetryRequested():
            return replace(moved, state="queued", round_start=job.attempts + 1)
    return moved


@dataclass(frozen=True)
class Policy:
    """The executor's settings a decision needs."""

    max_attempts: int = 3
    retry_base_s: float = 2.0
    retry_cap_s: float = 300.0
    action_timeout_s: float = 30.0
    lease_grace_s: float = 10.0


@dataclass(frozen=True)
class Decision:
    """Events to append at the folded version, and the retry timer they need."""

    events: list[DomainEvent] = field(default_factory=list)
    retry_timer: tuple[UUID, datetime, JobRetryDue] | None = None


class LeaseLost(Exception):
    """The worker no longer holds the job (its lease expired and another took it, or it ended)."""


def retry_timer_id(job_id: str, attempt: int) -> UUID:
    return uuid5(_TIMER_IDS, f"{job_id}/retry/{attempt}")


def backoff_s(failed: int, policy: Policy, rand: float) -> float:
    """Full jitter: uniform in [0, min(cap, base * 2**(failed-1))] for the `failed`-th failure
    (`rand` in [0, 1) is the caller's randomness, so this stays pure)."""
    ceiling = min(policy.retry_cap_s, policy.retry_base_s * 2.0 ** min(failed - 1, 60))
    return max(0.0, min(1.0, rand)) * ceiling


def decide_claim(job: Job, *, worker: str, now: datetime, policy: Policy) -> Decision:
    """What a worker that found the job claimable appends: `job.started` with a lease covering
    its remaining steps' time limits; or the job's end when nothing is left to try."""
    if not job.claimable:
        return Decision()
    if job.queued.mode == "shadow":
        return Decision([JobSkipped(reason="shadow")])
    if job.next_step is None:  # every step done, the end not recorded (the lease ran out)
        return Decision([JobSucceeded(attempts=max(1, job.attempts))])
    if job.tries_used() >= policy.max_attempts:  # the last attempt's executor went away
        return Decision([dead_letter(job, job.last_error or "the last attempt did not finish")])
    attempt = job.attempts + 1
    remaining = job.steps - len(job.done)
    until = now + timedelta(seconds=remaining * policy.action_timeout_s + policy.lease_grace_s)
    return Decision([JobStarted(attempt=attempt, worker=worker, lease_until=until)])


def decide_lease_expired(job: Job | None, *, now: datetime) -> list[DomainEvent]:
    """A running job whose lease has ended (its executor went away, or overran every time
    limit): `job.lease_expired`, which makes it claimable again, counting the attempt."""
    if job is None or job.state != "running" or job.lease is None or job.lease.until > now:
        return []
    return [JobLeaseExpired(attempt=job.lease.attempt, worker=job.lease.worker)]


def _holding(job: Job, *, worker: str, attempt: int) -> None:
    lease = job.lease
    if (
        job.state != "running"
        or lease is None
        or (lease.attempt, lease.worker)
        != (
            attempt,
            worker,
        )
    ):
        raise LeaseLost(f"job {job.id}: attempt {attempt} of {worker} no longer holds it")


def decide_step_done(
    job: Job, *, worker: str, attempt: int, step: int, result: dict[str, Any]
) -> Decision:
    """Step `step` succeeded; after the last step, the job has."""
    _holding(job, worker=worker, attempt=attempt)
    action = str(job.queued.actions[step]["type"])
    done: list[DomainEvent] = [
        JobStepSucceeded(step=step, action=action, attempt=attempt, result=result)
    ]
    if job.done | {step} >= set(range(job.steps)):
        done.append(JobSucceeded(attempts=attempt))
    return Decision(done)


def decide_step_failed(
    job: Job,
    *,
    worker: str,
    attempt: int,
    step: int,
    error: str,
    retryable: bool,
    now: datetime,
    rand: float,
    policy: Policy,
) -> Decision:
    """Step `step` failed: the next attempt after a backoff while the budget lasts and the
    error is one a retry can mend; otherwise dead-lettered with this error."""
    _holding(job, worker=worker, attempt=attempt)
    text = error[:MAX_ERROR] or "the step failed"
    action = str(job.queued.actions[step]["type"])
    failed = JobStepFailed(
        step=step, action=action, attempt=attempt, error=text, retryable=retryable
    )
    used = attempt - job.round_start + 1
    if not retryable or used >= policy.max_attempts:
        return Decision([failed, dead_letter(job, text, attempts=attempt)])
    due = now + timedelta(seconds=backoff_s(used, policy, rand))
    timer = (retry_timer_id(job.id, attempt + 1), due, JobRetryDue(attempt=attempt + 1))
    return Decision([failed, JobRetryScheduled(attempt=attempt + 1, due_at=due)], retry_timer=timer)


def dead_letter(job: Job, error: str, *, attempts: int | None = None) -> JobDeadLettered:
    return JobDeadLettered(
        rule_id=job.queued.rule_id,
        ticket=job.queued.ticket,
        attempts=max(1, attempts if attempts is not None else job.attempts),
        last_error=error[:MAX_ERROR],
    )


def decide_retry(job: Job | None, *, by: str) -> list[DomainEvent]:
    """`POST /jobs/{id}/retry`: only a dead letter runs again, with a fresh budget."""
    if job is None:
        raise Refusal("NOT_FOUND", "the job was not found")
    if job.state != "dead_lettered":
        raise Refusal(
            "NOT_DEAD_LETTERED",
            f"only a dead-lettered job can be retried; this one is {job.state}",
            {"state": job.state},
        )
    return [JobRetryRequested(by=by)]


def decide_approval(job: Job, *, approval_id: str, outcome: str) -> list[DomainEvent]:
    """The decision of the job's approval request: approved, the job is queued to run;
    rejected or expired, it ends skipped with that reason. A job not waiting for this approval
    (decided already, or never gated by it) changes nothing."""
    if job.state != "pending_approval" or job.approval_id != approval_id:
        return []
    if outcome == "approved":
        return [JobApproved(approval_id=approval_id)]
    reason: SkipReason = "approval_rejected" if outcome == "rejected" else "approval_expired"
    return [JobSkipped(reason=reason, approval_id=approval_id)]
