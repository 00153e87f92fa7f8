"""An event that does not validate is reported without its values (they may be secrets): the
report goes to logs and to eventstore.parked_events, where operators and tools read it."""

from __future__ import annotations

import pytest

from libs.events.envelope import Envelope
from libs.events.registry import REGISTRY, InvalidEventPayload

HASH = "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA"


def test_a_payload_that_does_not_validate_is_reported_without_its_values() -> None:
    data = {"user_id": "u1", "password_hash": HASH, "unexpected": "x"}
    with pytest.raises(InvalidEventPayload) as failed:
        REGISTRY.decode("user.password_set", 1, data)
    assert "unexpected" in str(failed.value)  # says what is wrong
    assert HASH not in str(failed.value) and "argon2" not in str(failed.value)


def test_an_envelope_that_does_not_validate_is_reported_without_its_data() -> None:
    raw = (
        '{"id": "not-a-uuid", "stream_id": "user-1", "version": 1, "type": "user.password_set",'
        f' "schema_version": 1, "data": {{"password_hash": "{HASH}"}}, "metadata": {{}},'
        ' "recorded_at": "2026-12-01T00:00:00Z", "position": 1}'
    )
    with pytest.raises(ValueError) as failed:
        Envelope.model_validate_json(raw)
    assert "argon2" not in str(failed.value)
