"""`user.token_created` v2 added `expires_at`: a token stored as v1 (before tokens could expire)
loads as one that never expires."""

from __future__ import annotations

from pathlib import Path

from libs.events.catalog.people import TokenCreated
from libs.events.envelope import Envelope
from libs.events.registry import REGISTRY

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "user.token_created.v1.json"


def test_a_stored_v1_token_loads_as_one_that_never_expires() -> None:
    stored = Envelope.model_validate_json(FIXTURE.read_text())
    assert stored.schema_version == 1
    loaded = REGISTRY.load(stored)
    assert isinstance(loaded, TokenCreated)
    assert loaded.expires_at is None
    assert (loaded.token_id, loaded.user_id, loaded.scopes) == (
        "01930a4e-0000-7000-8000-000000000012",
        "u1",
        ["api"],
    )
    assert TokenCreated.schema_version == 2
