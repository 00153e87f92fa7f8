"""Attacks on the one-array append (libs/events/batch_encoding.py and `_APPEND`'s
`jsonb_array_elements`): what an append accepts, it must store whole, hand back as a reader
reads it, and publish within the limits it checked; what it refuses, it must refuse as a
StoreError before writing anything."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from libs.events.log_reads import dump_envelope
from libs.events.store import NO_STREAM, BatchTooLarge, EventStore, EventTooLarge
from libs.events.store_errors import MAX_BATCH_BYTES, MAX_EVENT_BYTES
from tests.store_attack_support import META, Blob, attack_store


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[EventStore]:
    async with attack_store(database_url) as made:
        yield made


def room() -> int:
    """The bytes an event's own JSON may have beside META."""
    return MAX_EVENT_BYTES - len(META.model_dump_json().encode())


async def test_a_batch_under_the_batch_limit_is_stored_not_refused_by_postgres(
    store: EventStore,
) -> None:
    """Postgres's limit (256 MB) is on the jsonb array it builds from the batch's text, and
    jsonb is up to six times larger than its text: a number `0,` is 2 bytes of text and 12 of
    jsonb. A batch of zeros just under MAX_BATCH_BYTES is stored; one event more is refused as
    BatchTooLarge before anything is written, never as a bare error from Postgres."""
    zeros = (room() - len('{"value":[]}') + 1) // 2
    event = Blob(value=[0] * zeros)
    assert len(event.model_dump_json()) <= room()
    count = MAX_BATCH_BYTES // len(event.model_dump_json())
    events = [event] * count
    written = await store.append("jsonb-1", events, expected_version=NO_STREAM, metadata=META)
    assert len(written) == count
    with pytest.raises(BatchTooLarge):
        await store.append("jsonb-2", [*events, event], expected_version=NO_STREAM, metadata=META)
    assert await store.stream_version("jsonb-2") == 0


async def test_an_accepted_event_is_published_within_the_event_limit(store: EventStore) -> None:
    """The size check counts the JSON sent (7 bytes per `1e+308`), but the row holds, and the
    relay publishes (`dump_envelope` of the row as read), 309 digits per number: a 20 KB event
    becomes a 900 KB bus message, 44 times what was checked, and a few more numbers take it
    past the bus's max_payload, which stops the relay at it. The limit must hold for the event
    as stored and published, or the append must refuse it. [Not introduced by this change:
    the old check counted the same sent bytes.]"""
    event = Blob(value=[1e308] * 3_000)
    assert len(event.model_dump_json()) < room() // 20
    try:
        await store.append("wide-1", [event], expected_version=NO_STREAM, metadata=META)
    except EventTooLarge:
        return
    (stored,) = await store.read_stream("wide-1")
    assert len(dump_envelope(stored)) <= MAX_EVENT_BYTES


@pytest.mark.parametrize("char", ["é", "€", "😀", "\u2028"])
async def test_the_event_limit_counts_bytes_of_multibyte_text_exactly(
    store: EventStore, char: str
) -> None:
    """An event exactly at the limit in UTF-8 bytes is stored (in a batch, as read back);
    one byte more is refused, and nothing of its batch is stored."""
    width = len(char.encode())
    fill = room() - len('{"value":""}')
    text = char * (fill // width) + "x" * (fill % width)
    at_limit = Blob(value=text)
    assert len(at_limit.model_dump_json().encode()) == room()
    over = Blob(value=text + "x")
    stream = f"mb-{width}-{ord(char)}"
    with pytest.raises(EventTooLarge):
        await store.append(
            stream, [Blob(value=1), over, Blob(value=2)], expected_version=NO_STREAM, metadata=META
        )
    assert await store.stream_version(stream) == 0
    written = await store.append(
        stream, [Blob(value=1), at_limit], expected_version=NO_STREAM, metadata=META
    )
    stored = await store.read_stream(stream)
    assert written == stored
    assert stored[1].data["value"] == text


async def test_an_event_nested_one_level_short_of_the_parsers_limit_is_stored_as_sent(
    store: EventStore,
) -> None:
    """199 levels parse alone, but the batch's array adds one and the fast parser gives up:
    every event of the batch then takes the slow path, which must still hand back each event
    as stored, in order, beside plain ones."""
    value: Any = "leaf"
    for _ in range(199):
        value = [value]
    events = [Blob(value=0), Blob(value={"tree": value}), Blob(value="after")]
    written = await store.append("edge-1", events, expected_version=NO_STREAM, metadata=META)
    stored = await store.read_stream("edge-1")
    assert written == stored
    assert [e.data for e in stored] == [json.loads(e.model_dump_json()) for e in events]


async def test_a_batch_of_five_thousand_events_is_stored_in_order(store: EventStore) -> None:
    events = [Blob(value={"i": i, "s": '\u2028"],[' * (i % 3)}) for i in range(5_000)]
    written = await store.append("many-1", events, expected_version=NO_STREAM, metadata=META)
    stored = await store.read_stream("many-1")
    assert written == stored
    assert [e.data["value"]["i"] for e in stored] == list(range(5_000))
    assert [e.version for e in stored] == list(range(1, 5_001))


async def test_number_like_text_in_strings_does_not_count_as_stored_digits(
    store: EventStore,
) -> None:
    """Only a number's exponent grows in jsonb. Ids whose hex reads like one (`...7e-1234...`,
    as uuids and hashes often do) are stored as sent, and so is a string made to look like a
    number with a huge exponent: it counts for no more than a float's longest exponent."""
    ids = [f"01a2335f-3470-754e-8073-{n:012d}" for n in range(100)]
    event = Blob(value={"ids": ids, "note": ":1e-99999999999,", "x": 1e300})
    written = await store.append("hex-1", [event], expected_version=NO_STREAM, metadata=META)
    (stored,) = await store.read_stream("hex-1")
    assert stored.data["value"]["ids"] == ids and written[0].id == stored.id
