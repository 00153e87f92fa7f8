"""The projections of people: the people service's own and the gateway's authentication read
model, each rebuilt from the log equals its live tables; and events written without them
inline reach them through the bus."""

from __future__ import annotations

from typing import Any

import pytest

from libs.events.catalog.people import UserPasswordSet, UserRegistered
from libs.events.envelope import Actor, Metadata, new_id
from libs.events.replay import replay_service
from libs.events.runtime import Service
from libs.events.store import NO_STREAM
from libs.events.testing import eventually
from services.gateway.app import SERVICE as GATEWAY
from services.people.app import SERVICE as PEOPLE
from services.people.security import hash_password
from tests.gateway.helpers import Gateway, SignedIn, login, settle


def tables(schema: str) -> dict[str, str]:
    return {
        f"{schema}.users": "user_id",
        f"{schema}.sessions": "session_id",
        f"{schema}.tokens": "token_id",
    }


async def snapshot(gateway: Gateway, schema: str) -> dict[str, list[dict[str, Any]]]:
    return {
        table: [
            dict(r) for r in await gateway.deps.pool.fetch(f"SELECT * FROM {table} ORDER BY {key}")
        ]
        for table, key in tables(schema).items()
    }


@pytest.mark.parametrize("service", [PEOPLE, GATEWAY], ids=["people", "gateway"])
async def test_replaying_the_people_projection_equals_the_live_tables(
    gateway: Gateway, signed_in: SignedIn, service: Service
) -> None:
    admin, _ = await signed_in("root@example.com")
    bob, bob_user = await signed_in("bob@example.com")
    await admin.patch(f"/api/v1/users/{bob_user['id']}", json={"role": "operator"})
    kept = await bob.post("/api/v1/tokens", json={"name": "kept", "scopes": ["api"]})
    gone = await bob.post("/api/v1/tokens", json={"name": "gone", "scopes": ["ingest"]})
    await bob.delete(f"/api/v1/tokens/{gone.json()['id']}")
    await bob.post("/api/v1/auth/logout")
    await settle(gateway.deps)
    live = await snapshot(gateway, service.name)
    assert [len(rows) for rows in live.values()] == [2, 2, 2]

    applied = await replay_service(service, gateway.deps)

    assert applied > 0
    assert await snapshot(gateway, service.name) == live
    assert (await admin.get("/api/v1/me")).status_code == 200  # sessions survive a rebuild
    headers = {"Authorization": f"Bearer {kept.json()['token']}"}
    assert (await gateway.client().get("/api/v1/me", headers=headers)).json()["role"] == "operator"


async def test_people_events_written_elsewhere_reach_the_projection_through_the_bus(
    gateway: Gateway,
) -> None:
    user_id = str(new_id())
    await gateway.deps.store.append(
        f"user-{user_id}",
        [
            UserRegistered(
                user_id=user_id, email="imported@example.com", name="Imp", role="operator"
            ),
            UserPasswordSet(user_id=user_id, password_hash=await hash_password("imported-pass")),
        ],
        expected_version=NO_STREAM,
        metadata=Metadata(actor=Actor.system(), service="test"),
    )

    async def role() -> str | None:
        found: str | None = await gateway.deps.pool.fetchval(
            "SELECT role FROM people.users WHERE user_id = $1 AND password_hash <> ''", user_id
        )
        return found

    assert await eventually(role) == "operator"
    response = await login(gateway.client(), "imported@example.com", password="imported-pass")
    assert response.json()["role"] == "operator"
