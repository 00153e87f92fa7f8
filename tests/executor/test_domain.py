"""The job's state and the executor's decisions, given / when / then over events, no I/O."""

from __future__ import annotations

from datetime import timedelta

import pytest

from libs.events.catalog.rules import (
    JobApprovalRequested,
    JobApproved,
    JobDeadLettered,
    JobLeaseExpired,
    JobRetryDue,
    JobRetryRequested,
    JobRetryScheduled,
    JobSkipped,
    JobStarted,
    JobStepFailed,
    JobStepSucceeded,
    JobSucceeded,
)
from libs.events.registry import DomainEvent
from services.executor.domain import (
    Job,
    LeaseLost,
    Policy,
    backoff_s,
    decide_claim,
    decide_lease_expired,
    decide_retry,
    decide_step_done,
    decide_step_failed,
    evolve,
)
from services.executor.refusals import Refusal
from tests.executor.jobs import T0, firing

POLICY = Policy(max_attempts=3, retry_base_s=2.0, retry_cap_s=300.0, action_timeout_s=5.0)
TWO_STEPS = [
    {"type": "add_tag", "params": {"tag": "prod"}},
    {"type": "set_priority", "params": {"priority": "high"}},
]


def fold(events: list[DomainEvent]) -> Job:
    job: Job | None = None
    for version, item in enumerate(events, start=1):
        job = evolve(job, item, version=version, at=T0 + timedelta(seconds=version))
    assert job is not None
    return job


def given(*more: DomainEvent, actions: list[dict[str, object]] | None = None) -> list[DomainEvent]:
    return [*firing(actions or TWO_STEPS), *more]


def started(attempt: int = 1, worker: str = "w1") -> JobStarted:
    return JobStarted(attempt=attempt, worker=worker, lease_until=T0 + timedelta(minutes=1))


def test_a_queued_job_is_claimed_with_a_lease_covering_its_steps() -> None:
    job = fold(given())
    assert job.state == "queued" and job.claimable and job.attempts == 0
    decision = decide_claim(job, worker="w1", now=T0, policy=POLICY)
    [start] = decision.events
    assert isinstance(start, JobStarted) and start.attempt == 1 and start.worker == "w1"
    assert start.lease_until == T0 + timedelta(seconds=2 * 5.0 + POLICY.lease_grace_s)
    running = fold(given(start))
    assert decide_lease_expired(running, now=start.lease_until - timedelta(seconds=1)) == []
    assert decide_lease_expired(running, now=start.lease_until) == [
        JobLeaseExpired(attempt=1, worker="w1")
    ]


def test_only_a_running_job_has_a_lease_to_expire() -> None:
    late = T0 + timedelta(days=1)
    assert decide_lease_expired(None, now=late) == []
    assert decide_lease_expired(fold(given()), now=late) == []  # queued, never claimed
    step0 = JobStepSucceeded(step=0, action="add_tag", attempt=1)
    step1 = JobStepSucceeded(step=1, action="set_priority", attempt=1)
    finished = fold(given(started(), step0, step1, JobSucceeded(attempts=1)))
    assert finished.state == "succeeded" and decide_lease_expired(finished, now=late) == []


def test_a_running_job_is_not_claimed_again() -> None:
    job = fold(given(started()))
    assert job.state == "running" and not job.claimable
    assert decide_claim(job, worker="w2", now=T0, policy=POLICY).events == []


def test_steps_are_recorded_and_the_last_one_ends_the_job() -> None:
    job = fold(given(started()))
    first = decide_step_done(job, worker="w1", attempt=1, step=0, result={})
    assert [type(e) for e in first.events] == [JobStepSucceeded]
    job = fold(given(started(), *first.events))
    assert job.next_step == 1 and job.out().action == "set_priority"
    last = decide_step_done(job, worker="w1", attempt=1, step=1, result={})
    assert [type(e) for e in last.events] == [JobStepSucceeded, JobSucceeded]
    done = fold(given(started(), *first.events, *last.events))
    assert done.state == "succeeded" and done.attempts == 1


def test_a_retry_resumes_at_the_first_step_not_done() -> None:
    step0 = JobStepSucceeded(step=0, action="add_tag", attempt=1)
    failed = JobStepFailed(step=1, action="set_priority", attempt=1, error="boom")
    retry = JobRetryScheduled(attempt=2, due_at=T0)
    job = fold(given(started(), step0, failed, retry, JobRetryDue(attempt=2)))
    assert job.state == "queued" and job.next_step == 1 and job.last_error == "boom"
    [start] = decide_claim(job, worker="w2", now=T0, policy=POLICY).events
    assert isinstance(start, JobStarted) and start.attempt == 2
    # one step left: the lease covers one time limit
    assert start.lease_until == T0 + timedelta(seconds=5.0 + POLICY.lease_grace_s)


def test_a_failure_schedules_a_retry_with_full_jitter_backoff() -> None:
    job = fold(given(started()))
    decision = decide_step_failed(
        job, worker="w1", attempt=1, step=0, error="HTTP 500", retryable=True, now=T0,
        rand=0.5, policy=POLICY,
    )  # fmt: skip
    failed, retry = decision.events
    assert isinstance(failed, JobStepFailed) and failed.error == "HTTP 500"
    assert isinstance(retry, JobRetryScheduled) and retry.attempt == 2
    assert retry.due_at == T0 + timedelta(seconds=1.0)  # 0.5 of min(cap, 2 * 2**0)
    assert decision.retry_timer is not None and decision.retry_timer[1] == retry.due_at
    assert fold(given(started(), *decision.events)).state == "retry_scheduled"


def test_backoff_doubles_up_to_the_cap_and_never_exceeds_it() -> None:
    assert [backoff_s(n, POLICY, 1.0) for n in (1, 2, 3)] == [2, 4, 8]
    assert backoff_s(30, POLICY, 1.0) == 300
    assert backoff_s(3, POLICY, 0.0) == 0.0


def test_the_last_attempt_failing_dead_letters_with_its_error() -> None:
    history: list[DomainEvent] = []
    for attempt in (1, 2):
        history += [
            started(attempt),
            JobStepFailed(step=0, action="add_tag", attempt=attempt, error=f"e{attempt}"),
            JobRetryScheduled(attempt=attempt + 1, due_at=T0),
            JobRetryDue(attempt=attempt + 1),
        ]
    job = fold(given(*history, started(3)))
    decision = decide_step_failed(
        job, worker="w1", attempt=3, step=0, error="e3", retryable=True, now=T0, rand=0.1,
        policy=POLICY,
    )  # fmt: skip
    failed, dead = decision.events
    assert isinstance(dead, JobDeadLettered) and dead.last_error == "e3" and dead.attempts == 3
    assert dead.rule_id == job.queued.rule_id and dead.ticket == "OPS-1"
    assert fold(given(*history, started(3), failed, dead)).state == "dead_lettered"


def test_an_error_no_retry_can_mend_dead_letters_at_once() -> None:
    job = fold(given(started()))
    decision = decide_step_failed(
        job, worker="w1", attempt=1, step=0, error="INVALID_TRANSITION: no", retryable=False,
        now=T0, rand=0.1, policy=POLICY,
    )  # fmt: skip
    assert [type(e) for e in decision.events] == [JobStepFailed, JobDeadLettered]


def test_a_worker_whose_lease_was_taken_over_records_nothing() -> None:
    expired = JobLeaseExpired(attempt=1, worker="w1")
    job = fold(given(started(1, "w1"), expired, started(2, "w2")))
    with pytest.raises(LeaseLost):
        decide_step_done(job, worker="w1", attempt=1, step=0, result={})


def test_an_expired_lease_makes_the_job_claimable_and_counts_the_attempt() -> None:
    job = fold(given(started(1, "w1"), JobLeaseExpired(attempt=1, worker="w1")))
    assert job.state == "queued" and job.claimable and "w1" in (job.last_error or "")
    [start] = decide_claim(job, worker="w2", now=T0, policy=POLICY).events
    assert isinstance(start, JobStarted) and start.attempt == 2


def test_a_stale_lease_expiry_changes_nothing() -> None:
    done = [JobStepSucceeded(step=i, action="x", attempt=1) for i in (0, 1)]
    job = fold(
        given(started(), *done, JobSucceeded(attempts=1), JobLeaseExpired(attempt=1, worker="w1"))
    )
    assert job.state == "succeeded"


def test_the_last_attempt_lost_with_its_executor_is_dead_lettered_on_claim() -> None:
    history: list[DomainEvent] = []
    for attempt in (1, 2, 3):
        history += [started(attempt), JobLeaseExpired(attempt=attempt, worker="w1")]
    job = fold(given(*history))
    [dead] = decide_claim(job, worker="w2", now=T0, policy=POLICY).events
    assert isinstance(dead, JobDeadLettered) and "went away" in dead.last_error


def test_only_a_dead_letter_can_be_retried() -> None:
    with pytest.raises(Refusal) as refused:
        decide_retry(fold(given(started())), by="u-op")
    assert refused.value.code == "NOT_DEAD_LETTERED"
    with pytest.raises(Refusal) as missing:
        decide_retry(None, by="u-op")
    assert missing.value.code == "NOT_FOUND"


def test_a_retried_dead_letter_gets_a_fresh_budget_of_attempts() -> None:
    dead = JobDeadLettered(rule_id="r", ticket="OPS-1", attempts=1, last_error="x")
    failed = JobStepFailed(step=0, action="add_tag", attempt=1, error="x", retryable=False)
    job = fold(given(started(), failed, dead))
    [again] = decide_retry(job, by="u-op")
    assert isinstance(again, JobRetryRequested)
    job = fold(given(started(), failed, dead, again))
    assert job.state == "queued" and job.tries_used() == 0
    [start] = decide_claim(job, worker="w1", now=T0, policy=POLICY).events
    assert isinstance(start, JobStarted) and start.attempt == 2


def test_a_shadow_job_is_skipped_not_run() -> None:
    job = fold(firing(TWO_STEPS, mode="shadow"))
    assert job.state == "skipped" and job.skip_reason == "shadow"
    queued_only = fold(firing(TWO_STEPS, mode="shadow")[:1])
    [skip] = decide_claim(queued_only, worker="w1", now=T0, policy=POLICY).events
    assert isinstance(skip, JobSkipped) and skip.reason == "shadow"


def test_a_gated_job_waits_for_its_approval() -> None:
    gate = {"approvers": {"roles": ["admin"]}}
    events = firing(TWO_STEPS, approval=gate)
    assert not fold(events).claimable
    requested = JobApprovalRequested(approval_id="apr-1")
    assert fold([*events, requested]).state == "pending_approval"
    approved = fold([*events, requested, JobApproved(approval_id="apr-1")])
    assert approved.state == "queued" and approved.claimable and approved.approval_id == "apr-1"
