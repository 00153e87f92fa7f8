"""Attacks on the one-row append answer (libs/events/store.py `_APPEND` and `_stored`): every
envelope an append hands back must be the event a reader later reads, and an append that
reports a failure must have stored nothing."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from libs.contracts.rule_definitions import TriggerIn
from libs.events import batch_encoding
from libs.events.registry import DomainEvent
from libs.events.store import ANY, NO_STREAM, BatchTooLarge, EventStore, UnreadableEvent
from tests.store_attack_support import ATTACK, META, Blob, attack_store


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[EventStore]:
    async with attack_store(database_url) as made:
        yield made


def nested(depth: int) -> Any:
    value: Any = "leaf"
    for _ in range(depth):
        value = [value]
    return value


async def test_a_deeply_nested_event_is_appended_once_and_handed_back_as_stored(
    store: EventStore,
) -> None:
    """Postgres, pydantic's serialiser and the reader's json.loads all take 250 levels, where
    `from_json` stops at 200: the append must not raise once its row has committed (the event
    would be in the log anyway, and a caller that retries would write it again)."""
    event = Blob(value={"tree": nested(250)})
    try:
        written = await store.append("deep-1", [event], expected_version=NO_STREAM, metadata=META)
    except ValueError as exc:
        stored = await store.read_stream("deep-1")
        pytest.fail(f"the append raised {exc!r}, yet stored {len(stored)} event(s)")
    assert written == await store.read_stream("deep-1")


async def test_an_integer_no_reader_can_parse_is_not_stored(store: EventStore) -> None:
    """A 5,000-digit integer: Postgres stores it, but the reader's json.loads (Python's
    4,300-digit limit) cannot parse it back. The append refuses it before writing, or it would
    commit a row that breaks every later read of the stream and the log."""
    with pytest.raises(UnreadableEvent):
        await store.append(
            "big-1", [Blob(value=10**5000)], expected_version=NO_STREAM, metadata=META
        )
    assert await store.stream_version("big-1") == 0


async def test_any_version_batches_racing_are_each_answered_with_their_stored_rows(
    store: EventStore,
) -> None:
    """Under ANY the losers retry: each envelope's version and position must still be the row
    it got (positions paired with versions, `before` from the winning attempt)."""
    answers = await asyncio.gather(
        *(
            store.append(
                "any-9",
                [Blob(value=[w, i]) for i in range(3)],
                expected_version=ANY,
                metadata=META,
            )
            for w in range(12)
        )
    )
    stored = {e.id: e for e in await store.read_stream("any-9")}
    assert [e.version for e in stored.values()] == list(range(1, 37))
    for answer in answers:
        assert answer == [stored[e.id] for e in answer]
        assert [e.version for e in answer] == list(range(answer[0].version, answer[0].version + 3))
        assert [e.data["value"][1] for e in answer] == [0, 1, 2]


@pytest.mark.parametrize("savepoint", [True, False])
async def test_an_append_in_a_long_transaction_answers_with_the_stored_time(
    store: EventStore, savepoint: bool
) -> None:
    """`recorded_at` in the answer must be the column's value: the transaction's start, not
    the time of the statement, however late in the transaction the append runs."""
    async with store.transaction() as conn:
        started = await conn.fetchval("SELECT now()")
        await asyncio.sleep(0.05)
        written = await store.append(
            "tx-1",
            [Blob(value=1), Blob(value=2)],
            expected_version=NO_STREAM,
            metadata=META,
            conn=conn,
            savepoint=savepoint,
        )
    stored = await store.read_stream("tx-1")
    assert written == stored
    assert {e.recorded_at for e in stored} == {started}


async def test_a_retry_with_the_same_ids_under_any_answers_with_the_first_rows(
    store: EventStore,
) -> None:
    """A retried ANY append (caller's ids) must not append again nor answer with new
    versions: the stored envelopes, as first answered, in and out of a caller's transaction."""
    events = [Blob(value="a"), Blob(value="b")]
    first = await store.append("retry-1", events, expected_version=ANY, metadata=META)
    ids = [e.id for e in first]
    again = await store.append("retry-1", events, expected_version=ANY, metadata=META, ids=ids)
    async with store.transaction() as conn:
        inside = await store.append(
            "retry-1", events, expected_version=ANY, metadata=META, ids=ids, conn=conn
        )
    assert first == again == inside == await store.read_stream("retry-1")


@ATTACK.register("attack.aliased")
class Aliased(DomainEvent):
    """A field whose model serializes by alias (as the rule definitions' `from` does)."""

    trigger: TriggerIn


async def test_each_event_is_stored_as_its_own_model_dumps_it(store: EventStore) -> None:
    """The batch is serialized event by event with each model's own serializer: a nested
    model's `serialize_by_alias` must hold, as it does for `model_dump_json()`."""
    event = Aliased(trigger=TriggerIn(event="ticket.status_changed", from_="open", to="resolved"))
    written = await store.append("alias-1", [event], expected_version=NO_STREAM, metadata=META)
    stored = await store.read_stream("alias-1")
    assert stored[0].data == json.loads(event.model_dump_json())
    assert stored[0].data["trigger"]["from"] == "open"
    assert written == stored


async def test_a_batch_over_the_jsonb_limit_is_refused_whole(
    store: EventStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(batch_encoding, "MAX_BATCH_BYTES", 64 * 1024)
    events = [Blob(value="x" * 30_000) for _ in range(3)]  # each well under the event limit
    with pytest.raises(BatchTooLarge):
        await store.append("batch-1", events, expected_version=NO_STREAM, metadata=META)
    assert await store.stream_version("batch-1") == 0
    await store.append("batch-1", events[:2], expected_version=NO_STREAM, metadata=META)
    assert await store.stream_version("batch-1") == 2
