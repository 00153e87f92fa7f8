"""Replicas: several executors (Systems on one database) run each of many jobs exactly once; a
job whose executor went away mid-attempt (its lease expired) is taken over by another replica
and resumes at the first step not done."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime, timedelta

from libs.events.catalog.rules import JobStarted
from libs.events.envelope import Actor, Metadata
from libs.events.settings import Settings
from libs.events.testing import isolated_system
from services.executor.app import SERVICE as EXECUTOR
from services.executor.handlers import JobCommands
from tests.executor.jobs import firing, queued
from tests.executor.receiver import Receiver
from tests.executor.stack import Stack


async def test_replicas_share_the_jobs_and_run_each_once(
    stack: Stack, fast: Settings, database_url: str, nats_url: str, receiver: Receiver
) -> None:
    # each replica runs one job at a time and the endpoint answers slowly: both must take jobs
    one_each = fast.model_copy(update={"executor_concurrency": 1})
    receiver.delay_s = 0.2
    second = isolated_system(one_each, database_url, nats_url, services=(EXECUTOR,), replica="r2")
    third = isolated_system(one_each, database_url, nats_url, services=(EXECUTOR,), replica="r3")
    async with second, third:
        webhook_id = await stack.webhook(receiver.url)
        keys = [await stack.ticket() for _ in range(6)]
        jobs = []
        for key in keys:
            actions = [
                {"type": "add_tag", "params": {"tag": "auto"}},
                {"type": "webhook", "params": {"webhook_id": webhook_id}},
            ]
            jobs.append(await stack.queue(actions, ticket=key))
        done = await asyncio.gather(*(stack.settled(j) for j in jobs))
    assert [j["state"] for j in done] == ["succeeded"] * len(jobs)
    assert all(j["attempts"] == 1 for j in done)
    started = Counter(h["type"] for j in done for h in j["history"])
    assert started["job.started"] == len(jobs) and started["job.step_succeeded"] == 2 * len(jobs)
    assert sorted(r.headers["idempotency-key"] for r in receiver.received) == sorted(jobs)
    workers = {
        h["detail"]["worker"] for j in done for h in j["history"] if h["type"] == "job.started"
    }
    assert len(workers) >= 2, workers
    for key in keys:
        assert (await stack.ticket_events(key)).count("ticket.tagged") == 1


async def test_a_job_whose_lease_expired_is_resumed_by_another_worker(stack: Stack) -> None:
    key = await stack.ticket()
    # a worker that claims the job and dies at once: only its claim, with its lease, remains
    actions = [{"type": "add_tag", "params": {"tag": "one"}}]
    events = firing(actions, ticket=key)
    job_id = queued(events).job_id
    until = datetime.now(UTC) + timedelta(seconds=0.5)
    gone = JobStarted(attempt=1, worker="dead-worker", lease_until=until)
    meta = Metadata(actor=Actor.service("executor"), service="executor")
    await stack.deps.store.append(
        f"job-{job_id}", [*events, gone], expected_version=0, metadata=meta
    )
    job = await stack.settled(job_id)
    assert job["state"] == "succeeded" and job["attempts"] == 2
    types = [h["type"] for h in job["history"]]
    assert types == [
        "job.queued", "job.started", "job.lease_expired", "job.started", "job.step_succeeded",
        "job.succeeded",
    ]  # fmt: skip
    assert await stack.ticket_events(key) == ["ticket.created", "ticket.tagged"]


async def test_replicas_watching_one_ended_lease_expire_it_once(stack: Stack) -> None:
    """Every replica's lease watch sees the same ended lease; the stream's version lets one of
    them expire it, and the job then runs once more."""
    key = await stack.ticket()
    events = firing([{"type": "add_tag", "params": {"tag": "once"}}], ticket=key)
    job_id = queued(events).job_id
    ended = JobStarted(
        attempt=1, worker="dead-worker", lease_until=datetime.now(UTC) - timedelta(seconds=1)
    )
    meta = Metadata(actor=Actor.service("executor"), service="executor")
    commands = [JobCommands(stack.deps) for _ in range(4)]
    # the commands race the service's own watch too: at most one of all of them expires it
    await stack.deps.store.append(
        f"job-{job_id}", [*events, ended], expected_version=0, metadata=meta
    )
    await asyncio.gather(*(c.expire_lease(job_id) for c in commands))
    job = await stack.settled(job_id)
    types = [h["type"] for h in job["history"]]
    assert types.count("job.lease_expired") == 1
    assert job["state"] == "succeeded" and job["attempts"] == 2
    assert await stack.ticket_events(key) == ["ticket.created", "ticket.tagged"]
