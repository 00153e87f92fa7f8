"""The store builds envelopes without a second validation pass; they must be the same envelopes
a validated construction makes, or a reader would see a different event than a writer."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

import pytest
from pydantic import ValidationError

from libs.events.envelope import Actor, ActorKind, Envelope, Metadata, new_id


def _fields() -> dict[str, object]:
    return {
        "id": new_id(),
        "stream_id": "ticket-OPS-1",
        "version": 3,
        "type": "ticket.created",
        "schema_version": 1,
        "data": {"title": "disk full", "nested": {"a": [1, 2]}},
        "metadata": Metadata(actor=Actor(kind=ActorKind.SERVICE, id="tickets")),
        "recorded_at": datetime(2026, 12, 1, tzinfo=UTC),
        "position": 42,
    }


def test_a_trusted_envelope_equals_a_validated_one() -> None:
    fields = _fields()
    trusted = Envelope.trusted(**fields)  # type: ignore[arg-type]
    validated = Envelope(**fields)
    assert trusted == validated
    assert trusted.model_dump() == validated.model_dump()
    assert trusted.model_dump_json() == validated.model_dump_json()
    assert Envelope.model_validate_json(trusted.model_dump_json()) == validated


def test_a_trusted_envelope_sets_every_field_and_stays_frozen() -> None:
    trusted = Envelope.trusted(**_fields())  # type: ignore[arg-type]
    assert set(trusted.model_fields_set) == set(Envelope.model_fields)
    assert trusted.category == "ticket"
    with pytest.raises(ValidationError):
        trusted.version = 4  # type: ignore[misc]


def test_an_envelope_of_trusted_fields_equals_a_validated_one() -> None:
    fields = _fields()
    made = Envelope.of_trusted_fields(dict(fields))
    assert made == Envelope(**fields)
    assert made.model_dump_json() == Envelope(**fields).model_dump_json()


def test_new_ids_are_time_ordered_uuid7s_equal_to_their_stdlib_form() -> None:
    ids = [new_id() for _ in range(1000)]
    assert all(isinstance(i, UUID) and i.version == 7 for i in ids)
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert all(UUID(str(i)) == i and hash(UUID(str(i))) == hash(i) for i in ids[:10])
    envelope = Envelope(**{**_fields(), "id": ids[0]})
    assert Envelope.model_validate_json(envelope.model_dump_json()).id == ids[0]
