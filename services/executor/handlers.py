"""The executor's write side for jobs: claim, record a step's outcome, expire a lease, retry.

Each is one short transaction: load the job's stream, decide (services/executor/domain.py),
append at the version it was folded to (so of racing replicas one wins) with the projection
applied inline, and schedule a retry's durable timer in the same transaction.
Running an action happens between these transactions, never inside one (a transaction left
open across an HTTP call would hold back every reader of the log)."""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from libs.events import timers
from libs.events.consumers import append_and_project
from libs.events.db import Conn
from libs.events.envelope import Actor, Envelope, Metadata
from libs.events.runtime import Deps
from libs.events.store import ConcurrencyError
from services.executor import domain, history
from services.executor.domain import Decision, Job, LeaseLost, Policy
from services.executor.projection import JOBS_PROJECTION, known_state
from services.executor.refusals import Refusal

log = logging.getLogger(__name__)

ATTEMPTS = 8
CLAIM_TRIES = 4
_Decide = Callable[[Job], Decision]
EXECUTOR = Actor.service("executor")


def policy_of(deps: Deps) -> Policy:
    s = deps.settings
    return Policy(
        max_attempts=s.executor_max_attempts,
        retry_base_s=s.executor_retry_base_s,
        retry_cap_s=s.executor_retry_cap_s,
        action_timeout_s=s.executor_action_timeout_s,
        lease_grace_s=s.executor_lease_grace_s,
    )


def caused_by(queued: Envelope) -> Metadata:
    """The executor's events on a job: caused by its job.queued, in its correlation."""
    return Metadata(
        actor=EXECUTOR,
        correlation_id=queued.metadata.correlation_id,
        causation_id=queued.id,
        causation_depth=queued.metadata.causation_depth + 1,
        service="executor",
    )


@dataclass(frozen=True)
class Claim:
    """A job this worker holds: attempt `attempt` of it, from its first step not done."""

    job: Job
    queued: Envelope
    attempt: int
    worker: str


@dataclass
class JobCommands:
    """The write side of jobs, bound to a running service's dependencies."""

    deps: Deps

    def __post_init__(self) -> None:
        self.policy = policy_of(self.deps)
        self.projections = [self.deps.dispatcher(JOBS_PROJECTION, service="executor")]

    async def claimable(self, *, limit: int) -> int:
        """How many jobs (up to `limit`) a worker may claim now."""
        return int(
            await self.deps.pool.fetchval(
                "SELECT count(*) FROM (SELECT 1 FROM executor.jobs WHERE claimable LIMIT $1) j",
                limit,
            )
        )

    async def claim_next(self, *, worker: str) -> Claim | None:
        """Claim the oldest claimable job, each try in its own short transaction (the row locked
        SKIP LOCKED, so replicas take different jobs; then `job.started` at the stream's
        version, so of two that met on one job only one wins). A row whose claim comes to
        nothing (taken meanwhile, or it ended when claimed: skipped, done, dead-lettered) is
        passed over for the next, up to CLAIM_TRIES rows; None when none is left."""
        passed: list[str] = []
        for _ in range(CLAIM_TRIES):
            async with self.deps.store.transaction() as conn:
                row = await conn.fetchrow(
                    "SELECT job_id, clock_timestamp() AS now FROM executor.jobs WHERE claimable "
                    "AND job_id <> ALL($1::text[]) ORDER BY position LIMIT 1 "
                    "FOR UPDATE SKIP LOCKED",
                    passed,
                )
                if row is None:
                    return None
                job_id = row["job_id"]
                # the lease ends by the database's clock, the one the lease watch reads
                claim = await self._claim_one(conn, job_id, worker, now=row["now"])
            if claim is not None:
                return claim
            passed.append(job_id)
        return None

    async def _claim_one(
        self, conn: Conn, job_id: str, worker: str, *, now: datetime
    ) -> Claim | None:
        job, stream = await history.load(self.deps.store, job_id, conn=conn)
        if job is None:
            return None
        decision = domain.decide_claim(job, worker=worker, now=now, policy=self.policy)
        if not decision.events:
            return None
        try:
            written = await self._apply(conn, job, stream[0], decision)
        except ConcurrencyError:  # another writer got there first; its event re-notifies
            return None
        after = _evolved(self.deps, job, written)
        if after.state != "running":  # it ended instead (skipped, done, dead-lettered)
            return None
        return Claim(job=after, queued=stream[0], attempt=after.attempts, worker=worker)

    async def step_done(self, claim: Claim, step: int, result: dict[str, object]) -> Job:
        return await self._record(
            claim,
            lambda job: domain.decide_step_done(
                job, worker=claim.worker, attempt=claim.attempt, step=step, result=dict(result)
            ),
        )

    async def step_failed(self, claim: Claim, step: int, error: str, *, retryable: bool) -> Job:
        rand = random.random()
        return await self._record(
            claim,
            lambda job: domain.decide_step_failed(
                job,
                worker=claim.worker,
                attempt=claim.attempt,
                step=step,
                error=error,
                retryable=retryable,
                now=datetime.now(UTC),
                rand=rand,
                policy=self.policy,
            ),
        )

    async def _record(self, claim: Claim, decide: _Decide) -> Job:
        """Decide on the job as it is now and append; LeaseLost when this attempt no longer
        holds it (then nothing is recorded)."""
        for _ in range(ATTEMPTS):
            async with self.deps.store.transaction() as conn:
                job, _stream = await history.load(self.deps.store, claim.job.id, conn=conn)
                if job is None:
                    raise LeaseLost(f"job {claim.job.id} has no stream")
                decision = decide(job)
                try:
                    written = await self._apply(conn, job, claim.queued, decision)
                except ConcurrencyError:
                    continue
                return _evolved(self.deps, job, written)
        raise LeaseLost(f"job {claim.job.id} changed too often to record a step")

    async def _apply(
        self, conn: Conn, job: Job, queued: Envelope, decision: Decision
    ) -> list[Envelope]:
        meta = caused_by(queued)
        stream = history.job_stream(job.id)
        store = self.deps.store
        with known_state(job):
            written = await append_and_project(
                self.deps.store,
                conn,
                self.projections,
                stream,
                decision.events,
                expected_version=job.version,
                metadata=meta,
            )
        if decision.retry_timer is not None:
            timer_id, due, retry = decision.retry_timer
            await timers.schedule(
                store, conn, due_at=due, target_stream=stream, event=retry, metadata=meta,
                timer_id=timer_id,
            )  # fmt: skip
        return written

    async def expire_lease(self, job_id: str) -> bool:
        """Expire the lease of a running job whose lease has ended (the lease watch's command);
        False when there was nothing to expire, or another replica's watch got there first."""
        async with self.deps.store.transaction() as conn:
            # the row SKIP LOCKED: of the replicas' watches on one lease, one does the work
            now = await conn.fetchval(
                "SELECT clock_timestamp() FROM executor.jobs WHERE job_id = $1 "
                "FOR UPDATE SKIP LOCKED",
                job_id,
            )
            if now is None:
                return False
            job, stream = await history.load(self.deps.store, job_id, conn=conn)
            # by the database's clock, the one the watch chose the row by: a host clock behind
            # it would refuse the lease the watch keeps finding
            events = domain.decide_lease_expired(job, now=now)
            if job is None or not events:
                return False
            try:
                await self._apply(conn, job, stream[0], Decision(events))
            except ConcurrencyError:
                return False
        return True

    async def retry(self, job_id: str, *, meta: Metadata) -> Job:
        """`POST /jobs/{id}/retry`: a dead letter is queued again (NOT_DEAD_LETTERED else)."""
        for _ in range(ATTEMPTS):
            async with self.deps.store.transaction() as conn:
                job, _stream = await history.load(self.deps.store, job_id, conn=conn)
                events = domain.decide_retry(job, by=meta.actor.id)
                if job is None:  # decide_retry refuses a missing job
                    raise Refusal("NOT_FOUND", "the job was not found")
                try:
                    written = await append_and_project(
                        self.deps.store,
                        conn,
                        self.projections,
                        history.job_stream(job_id),
                        events,
                        expected_version=job.version,
                        metadata=meta,
                    )
                except ConcurrencyError:
                    continue
                return _evolved(self.deps, job, written)
        raise Refusal("CONCURRENT_CHANGE", "the job changed too often; try again")


def _evolved(deps: Deps, job: Job, written: list[Envelope]) -> Job:
    registry = deps.store.registry
    for envelope in written:
        job = (
            domain.evolve(
                job, registry.load(envelope), version=envelope.version, at=envelope.recorded_at
            )
            or job
        )
    return job
