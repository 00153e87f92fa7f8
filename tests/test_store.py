"""Contract of the event store: concurrency, atomicity, gap-safe global reads, append-only."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest

from libs.events.db import create_pool, migrate, store_migrations
from libs.events.envelope import Actor, Envelope, Metadata
from libs.events.registry import REGISTRY, InvalidEventPayload, UnknownEventType
from libs.events.store import (
    ANY,
    NO_STREAM,
    START,
    ConcurrencyError,
    EventStore,
    UnknownPosition,
)
from libs.events.testing import eventually
from tests.events_for_tests import Counted, Renamed

META = Metadata(actor=Actor.system(), service="test")


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[EventStore]:
    pool = await create_pool(database_url, max_size=20)
    await migrate(pool, store_migrations())
    yield EventStore(pool)
    await pool.close()


async def test_append_to_new_stream_then_conflicting_append_is_refused(store: EventStore) -> None:
    written = await store.append("c-1", [Counted(n=1)], expected_version=NO_STREAM, metadata=META)
    assert [e.version for e in written] == [1]

    with pytest.raises(ConcurrencyError) as refused:
        await store.append("c-1", [Counted(n=2)], expected_version=NO_STREAM, metadata=META)
    assert refused.value.actual == 1

    await store.append("c-1", [Counted(n=2)], expected_version=1, metadata=META)
    assert [e.data["n"] for e in await store.read_stream("c-1")] == [1, 2]


async def test_expected_version_ahead_of_the_stream_is_a_conflict_not_a_gap(
    store: EventStore,
) -> None:
    with pytest.raises(ConcurrencyError):
        await store.append("c-1", [Counted(n=1)], expected_version=3, metadata=META)
    assert await store.read_stream("c-1") == []


async def test_two_writers_racing_for_the_same_version_one_wins(store: EventStore) -> None:
    results = await asyncio.gather(
        *(
            store.append("race-1", [Counted(n=i)], expected_version=NO_STREAM, metadata=META)
            for i in range(10)
        ),
        return_exceptions=True,
    )
    winners = [r for r in results if not isinstance(r, BaseException)]
    assert len(winners) == 1
    assert all(isinstance(r, ConcurrencyError) for r in results if r not in winners)
    assert len(await store.read_stream("race-1")) == 1


async def test_multi_event_append_is_atomic(store: EventStore) -> None:
    await store.append("c-1", [Counted(n=0)], expected_version=NO_STREAM, metadata=META)
    with pytest.raises(ConcurrencyError):
        await store.append(
            "c-1", [Counted(n=1), Counted(n=2), Counted(n=3)], expected_version=0, metadata=META
        )
    written = await store.append(
        "c-1", [Counted(n=1), Counted(n=2), Counted(n=3)], expected_version=1, metadata=META
    )
    assert [e.version for e in written] == [2, 3, 4]
    assert [e.data["n"] for e in await store.read_stream("c-1")] == [0, 1, 2, 3]


async def test_retrying_an_append_with_the_same_ids_is_idempotent(store: EventStore) -> None:
    first = await store.append(
        "c-1", [Counted(n=1), Counted(n=2)], expected_version=NO_STREAM, metadata=META
    )
    again = await store.append(
        "c-1",
        [Counted(n=1), Counted(n=2)],
        expected_version=NO_STREAM,
        metadata=META,
        ids=[e.id for e in first],
    )
    assert [e.id for e in again] == [e.id for e in first]
    assert len(await store.read_stream("c-1")) == 2


async def test_any_version_appends_from_many_writers_are_gapless(store: EventStore) -> None:
    await asyncio.gather(
        *(
            store.append("any-1", [Counted(n=i)], expected_version=ANY, metadata=META)
            for i in range(8)
        )
    )
    assert [e.version for e in await store.read_stream("any-1")] == list(range(1, 9))


async def test_read_stream_until_an_instant_and_by_type(store: EventStore) -> None:
    await store.append("c-1", [Counted(n=1)], expected_version=NO_STREAM, metadata=META)
    cut = datetime.now(UTC)
    await asyncio.sleep(0.01)
    await store.append("c-1", [Counted(n=2)], expected_version=1, metadata=META)
    assert [e.data["n"] for e in await store.read_stream("c-1", until=cut)] == [1]
    assert await store.read_stream("c-1", types=["test.renamed"]) == []


async def test_read_all_filters_types_and_resumes_after_a_position(store: EventStore) -> None:
    a = await store.append("c-1", [Counted(n=1)], expected_version=NO_STREAM, metadata=META)
    await store.append(
        "p-1", [Renamed(first="a", last="b")], expected_version=NO_STREAM, metadata=META
    )
    c = await store.append("c-2", [Counted(n=3)], expected_version=NO_STREAM, metadata=META)
    # readers wait for the cluster's oldest running transaction, which may be anyone's
    counted = await eventually(
        lambda: store.read_all(types=["test.counted"]), until=lambda found: len(found) == 2
    )
    assert [e.id for e in counted] == [a[0].id, c[0].id]
    after_first = await store.read_all(a[0].position)
    assert [e.stream_id for e in after_first] == ["p-1", "c-2"]
    with pytest.raises(UnknownPosition):
        await store.read_all(10_000)


async def test_an_event_that_commits_late_is_not_skipped_by_a_reader(
    store: EventStore, database_url: str
) -> None:
    """A takes a position first but commits after B: the reader must see both, A first."""
    slow = await asyncpg.connect(database_url)
    try:
        tx = slow.transaction()
        await tx.start()
        await slow.execute(
            "INSERT INTO eventstore.events (id, stream_id, version, type, schema_version, data, "
            "metadata) VALUES (gen_random_uuid(), 'late-1', 1, 'test.counted', 1, "
            "'{\"n\": 1}', $1::text::jsonb)",
            META.model_dump_json(),
        )
        fast = await store.append(
            "fast-1", [Counted(n=2)], expected_version=NO_STREAM, metadata=META
        )
        # B is committed, but a reader must not move past A's still-open transaction
        held = await store.read_batch(START)
        assert held.events == [] and held.held_back
        await tx.commit()
    finally:
        await slow.close()
    # the horizon is the cluster's: another database's transaction may hold it a moment longer
    batch = await eventually(
        lambda: store.read_batch(START), until=lambda found: len(found.events) == 2
    )
    assert [e.stream_id for e in batch.events] == ["late-1", "fast-1"]
    assert batch.events[0].position < fast[0].position


async def test_concurrent_writers_are_seen_gap_free_by_a_following_reader(
    store: EventStore,
) -> None:
    writers, per_writer = 16, 40
    seen: list[Envelope] = []
    done = asyncio.Event()

    async def follow() -> None:
        cursor = START
        while True:
            batch = await store.read_batch(cursor, limit=50)
            seen.extend(batch.events)
            cursor = batch.cursor
            if done.is_set() and not batch.events and not batch.held_back:
                return
            if not batch.events:
                await asyncio.sleep(0.001)

    async def write(w: int) -> None:
        for i in range(per_writer):
            await store.append(f"w{w}-{i % 3}", [Counted(n=i)], expected_version=ANY, metadata=META)

    reader = asyncio.create_task(follow())
    await asyncio.gather(*(write(w) for w in range(writers)))
    done.set()
    await asyncio.wait_for(reader, 30)

    assert len(seen) == writers * per_writer
    assert len({e.id for e in seen}) == len(seen)
    for stream in {e.stream_id for e in seen}:
        versions = [e.version for e in seen if e.stream_id == stream]
        assert versions == sorted(versions) == list(range(1, len(versions) + 1))


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE eventstore.events SET type = 'x'",
        "DELETE FROM eventstore.events",
        "TRUNCATE eventstore.events",
    ],
)
async def test_the_database_refuses_to_change_or_remove_events(
    store: EventStore, statement: str
) -> None:
    await store.append("c-1", [Counted(n=1)], expected_version=NO_STREAM, metadata=META)
    with pytest.raises(asyncpg.PostgresError, match="append-only"):
        await store.pool.execute(statement)
    assert len(await store.read_stream("c-1")) == 1


async def test_migrations_apply_once_even_when_run_again(store: EventStore) -> None:
    assert await migrate(store.pool, store_migrations()) == []


def test_unknown_event_type_is_named_in_the_error() -> None:
    with pytest.raises(UnknownEventType, match=r"no\.such"):
        REGISTRY.decode("no.such", 1, {})


def test_payload_that_does_not_validate_names_its_type() -> None:
    with pytest.raises(InvalidEventPayload, match=r"test\.counted"):
        REGISTRY.decode("test.counted", 1, {"n": "not a number"})


def test_a_stored_v1_event_is_upcast_on_read() -> None:
    stored = Envelope.model_validate(
        json.loads((Path(__file__).parent / "fixtures" / "test.renamed.v1.json").read_text())
    )
    loaded = REGISTRY.load(stored)
    assert loaded == Renamed(first="Ada", last="Lovelace")


async def test_an_append_without_savepoint_commits_with_its_transaction_or_not_at_all(
    store: EventStore,
) -> None:
    """savepoint=False: the append is part of the caller's transaction; a conflict is raised
    as ConcurrencyError at once and the transaction (aborted) leaves nothing behind."""
    async with store.transaction() as conn:
        made = await store.append(
            "nosp-1",
            [Counted(n=1)],
            expected_version=NO_STREAM,
            metadata=META,
            conn=conn,
            savepoint=False,
        )
    assert [e.version for e in await store.read_stream("nosp-1")] == [1]
    assert made[0].stream_id == "nosp-1"
    with pytest.raises(ConcurrencyError):
        async with store.transaction() as conn:
            await store.append(
                "nosp-2",
                [Counted(n=2)],
                expected_version=NO_STREAM,
                metadata=META,
                conn=conn,
                savepoint=False,
            )
            await store.append(
                "nosp-1",
                [Counted(n=3)],
                expected_version=NO_STREAM,
                metadata=META,
                conn=conn,
                savepoint=False,
            )
    assert await store.read_stream("nosp-2") == []
    assert [e.version for e in await store.read_stream("nosp-1")] == [1]


async def test_the_envelopes_an_append_returns_are_the_rows_a_reader_reads(
    store: EventStore,
) -> None:
    """The append answers with one row (positions, version before, time), not a row per event:
    every envelope it builds from that must be the stored event, field for field."""
    await store.append("c-9", [Counted(n=0)], expected_version=NO_STREAM, metadata=META)
    other = store.append("d-9", [Counted(n=7)], expected_version=NO_STREAM, metadata=META)
    written, _ = await asyncio.gather(
        store.append(
            "c-9", [Counted(n=i) for i in range(1, 51)], expected_version=1, metadata=META
        ),
        other,
    )
    stored = (await store.read_stream("c-9"))[1:]
    assert written == stored
    assert [e.version for e in written] == list(range(2, 52))
    assert [e.position for e in written] == sorted(e.position for e in written)
    assert len({e.recorded_at for e in written}) == 1


async def test_a_conflict_in_a_callers_transaction_names_the_actual_version(
    store: EventStore,
) -> None:
    await store.append("c-8", [Counted(n=1), Counted(n=2)], expected_version=ANY, metadata=META)
    async with store.transaction() as conn:
        with pytest.raises(ConcurrencyError) as refused:
            await store.append(
                "c-8",
                [Counted(n=3)],
                expected_version=1,
                metadata=META,
                conn=conn,
                savepoint=False,
            )
    assert (refused.value.expected, refused.value.actual) == (1, 2)
    assert len(await store.read_stream("c-8")) == 2
