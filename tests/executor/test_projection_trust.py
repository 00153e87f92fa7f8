"""The jobs projection folds a job from the store, never from the bus's copy of an event: the
dispatcher verifies only that the store holds an event of that id, stream and version
(libs/events/checkpoints.py lock_checkpoints_known), so a message with a stored event's identity
and another payload (forged, corrupted or mis-encoded) must not become the read model."""

from __future__ import annotations

from libs.events.store import NO_STREAM
from services.executor import history
from services.executor.projection import JOBS_PROJECTION
from tests.executor.jobs import firing, queued
from tests.executor.stack import RULES, Stack


async def test_job_queued_is_projected_from_the_store_not_from_the_bus_copy(stack: Stack) -> None:
    key = await stack.ticket()
    events = firing([{"type": "add_tag", "params": {"tag": "real"}}], ticket=key)
    job_id = queued(events).job_id
    stream = history.job_stream(job_id)
    dispatcher = stack.deps.dispatcher(JOBS_PROJECTION, service="executor")
    async with stack.deps.store.transaction() as conn:
        written = await stack.deps.store.append(
            stream, events, expected_version=NO_STREAM, metadata=RULES, conn=conn
        )
        first = written[0]
        # the bus delivers job.queued (the stored id, stream and version) with another payload;
        # verify=True, as the live consumer applies what it parsed from the NATS message
        forged = first.model_copy(
            update={"data": {**first.data, "ticket": "OPS-FORGED", "rule_id": "r-forged"}}
        )
        await dispatcher.apply_batch(conn, [forged])
    job = await stack.settled(job_id)  # the executor runs the store's job, on the real ticket
    assert job["state"] == "succeeded"
    stored, _ = await history.load(stack.deps.store, job_id)
    assert stored is not None and stored.queued.ticket == key
    row = await stack.deps.pool.fetchrow(
        "SELECT ticket, rule_id FROM executor.jobs WHERE job_id = $1", job_id
    )
    assert row is not None
    # the read model must be the store's job (and ticket / rule_id are only ever written on
    # the row's INSERT, so a wrong value stays until a replay)
    assert (row["ticket"], row["rule_id"]) == (key, stored.queued.rule_id), dict(row)
