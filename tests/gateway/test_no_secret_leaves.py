"""Secret fields are marked once in the event catalog and never leave the system: not through
the events API (not even to an admin's token), not through the live stream."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import httpx

from libs.events import catalog  # noqa: F401  (registers every event type)
from libs.events.envelope import Actor, Envelope, Metadata, new_id
from libs.events.registry import REDACTED, REGISTRY
from libs.events.testing import eventually
from services.gateway import events_api, stream
from tests.gateway.helpers import Gateway, SignedIn

SENTINEL = "$argon2id$v=19$m=65536,t=3,p=4$THIS-MUST-NOT-LEAVE"


def test_the_catalog_marks_every_hash_of_a_secret() -> None:
    marked = {f"{t}.{f}" for t in REGISTRY.types() for f in REGISTRY.secret_fields(t)}
    assert {
        "user.password_set.password_hash",
        "user.session_started.secret_hash",
        "user.token_created.token_hash",
    } <= marked


def test_no_marked_field_of_any_registered_type_leaves_through_the_api_or_the_stream() -> None:
    checked = 0
    for type_name in REGISTRY.types():
        secret = REGISTRY.secret_fields(type_name)
        if not secret:
            continue
        envelope = Envelope(
            id=new_id(),
            stream_id="s-1",
            version=1,
            type=type_name,
            schema_version=REGISTRY.class_for(type_name).schema_version,
            data={name: SENTINEL for name in secret} | {"user_id": "u-1"},
            metadata=Metadata(actor=Actor.system(), service="test"),
            recorded_at=datetime.now(UTC),
            position=1,
        )
        api_out = events_api._out(envelope).model_dump_json()
        frame = stream._frame(envelope)["data"]
        for shown in (api_out, frame):
            assert SENTINEL not in shown, type_name
            assert all(json.loads(shown)["data"][name] == REDACTED for name in secret)
        checked += 1
    assert checked >= 3


async def test_an_admin_reading_the_log_sees_no_password_session_or_token_hash(
    gateway: Gateway, signed_in: SignedIn
) -> None:
    admin, _ = await signed_in("admin@example.com")
    made = await admin.post("/api/v1/tokens", json={"name": "ci", "scopes": ["api"]})
    assert made.status_code == 201, made.text
    token = made.json()["token"]
    as_token = gateway.client()
    as_token.headers["Authorization"] = f"Bearer {token}"

    for type_name, field in [
        ("user.password_set", "password_hash"),
        ("user.session_started", "secret_hash"),
        ("user.token_created", "token_hash"),
    ]:
        for client in (admin, as_token):
            page = await eventually(reader(client, type_name), until=has_items)
            assert all(item["data"][field] == REDACTED for item in page["items"])
            assert "$argon2" not in json.dumps(page)


def reader(client: httpx.AsyncClient, type_name: str) -> Callable[[], Awaitable[dict[str, Any]]]:
    async def read() -> dict[str, Any]:
        found: dict[str, Any] = (
            await client.get("/api/v1/events", params={"type": type_name})
        ).json()
        return found

    return read


def has_items(page: dict[str, Any]) -> bool:
    return bool(page.get("items"))
