"""How a batch of events becomes the append statement's arguments, once, before anything is
written: the payloads as one JSON array (each event by its own model's serializer, exactly what
`model_dump_json()` gives), each event's JSON form for the envelopes the append answers with,
and the checks that refuse an event the log must not hold.

One array instead of a string per event: the per-event work in Python is the serializer call
and nothing else (half the cost of `model_dump_json`'s keyword wrapper), and Postgres splits the
array with `jsonb_array_elements`. The array is parsed back once (`pydantic_core.from_json`),
which also proves it readable: that parser refuses what the readers' `json.loads` refuses (an
integer of over 4,300 digits). Where it gives up early (past 200 levels of nesting, which the
readers take), each event is checked and dumped on its own.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from pydantic_core import from_json

from libs.events.envelope import Metadata, new_id
from libs.events.registry import DomainEvent, EventRegistry
from libs.events.store_errors import (
    MAX_BATCH_BYTES,
    MAX_EVENT_BYTES,
    BatchTooLarge,
    EventTooLarge,
    StoreError,
    UnreadableEvent,
)


@dataclass(frozen=True, slots=True)
class EncodedBatch:
    """One append's events, encoded and checked."""

    stream_id: str
    expected_version: int
    ids: list[UUID]
    events: Sequence[DomainEvent]
    payload: str
    """The events' JSON, as one array in order."""
    data: list[dict[str, Any]]
    """Each event's JSON form, as its envelope carries it."""
    metadata: Metadata
    metadata_json: str

    def args(self) -> tuple[Any, ...]:
        """The append statement's parameters, $1 to $7."""
        return (
            self.stream_id,
            self.ids,
            [e.event_type for e in self.events],
            [e.schema_version for e in self.events],
            self.payload,
            self.metadata_json,
            self.expected_version,
        )


def encode_batch(
    registry: EventRegistry,
    stream_id: str,
    events: Sequence[DomainEvent],
    *,
    expected_version: int,
    metadata: Metadata,
    ids: Sequence[UUID] | None,
) -> EncodedBatch:
    """Encode and check `events` (registered, each within MAX_EVENT_BYTES, readable back)."""
    if ids is not None and len(ids) != len(events):
        raise ValueError("ids and events must have the same length")
    for item in events:
        if not registry.knows(item.event_type):
            raise StoreError(f"event type {item.event_type!r} is not registered")
    metadata_json = metadata.model_dump_json()
    room = MAX_EVENT_BYTES - len(metadata_json.encode())
    encoded = [type(e).__pydantic_serializer__.to_json(e) for e in events]
    total = 0
    for item, one in zip(events, encoded, strict=True):
        size = stored_size(one)
        if size > room:
            raise EventTooLarge(item.event_type, MAX_EVENT_BYTES - room + size)
        total += size
    if total > MAX_BATCH_BYTES:
        raise BatchTooLarge(len(events), total)
    payload = (b"[" + b",".join(encoded) + b"]").decode()
    try:
        data: list[dict[str, Any]] = from_json(payload)
    except ValueError:
        data = [_checked_one_by_one(item, one) for item, one in zip(events, encoded, strict=True)]
    return EncodedBatch(
        stream_id=stream_id,
        expected_version=expected_version,
        ids=list(ids) if ids is not None else [new_id() for _ in events],
        events=events,
        payload=payload,
        data=data,
        metadata=metadata,
        metadata_json=metadata_json,
    )


_EXPONENT = re.compile(rb"[:,\[]-?[0-9]+(?:\.[0-9]+)?e([+-][0-9]+)")
"""A number written with an exponent, where a JSON value starts (pydantic writes no spaces)."""
LONGEST_EXPONENT = 324
"""No float's exponent is longer (5e-324); ints and Decimals are never written with one."""


def stored_size(encoded: bytes) -> int:
    """At least the bytes of the event's JSON as the log keeps it and the relay publishes it.
    jsonb writes a number without an exponent, so `1e+308` (6 bytes sent) comes back as 309
    digits: each exponent counts for its digits. Text inside a string that looks like such a
    number counts too, at most LONGEST_EXPONENT bytes each: that only errs towards the limit."""
    if b"e+" not in encoded and b"e-" not in encoded:
        return len(encoded)  # pydantic writes every exponent as e+ or e-
    grown = sum(min(abs(int(m[1])), LONGEST_EXPONENT) + 2 for m in _EXPONENT.finditer(encoded))
    return len(encoded) + grown


def _checked_one_by_one(event: DomainEvent, encoded: bytes) -> dict[str, Any]:
    """The slow path, for a batch the fast parser gave up on: parse this event as its readers
    will (refused when they could not), and take its JSON form from the event itself."""
    try:
        json.loads(encoded)  # what every reader's codec does (libs/events/db.py)
    except (ValueError, RecursionError) as exc:
        raise UnreadableEvent(event.event_type, str(exc)[:200]) from None
    return event.model_dump(mode="json")
