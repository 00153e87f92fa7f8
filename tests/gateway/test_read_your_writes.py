"""Read-your-writes across the gateway and the people service: with the gateway's bus-fed
authentication read model switched off, every people command is still visible to the very next
request, because the gateway catches that model up to the command's receipt before answering.
And no password hash reaches the gateway's tables."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator

import pytest

from libs.events.settings import Settings
from services.gateway import stream
from services.gateway.app import SERVICE
from services.people.app import SERVICE as PEOPLE
from tests.gateway.helpers import Gateway, login, register, running_gateway

NO_LIVE_AUTH = dataclasses.replace(SERVICE, consumers=[stream.TICKET_ACCESS])
"""The gateway without the live consumer of its authentication read model."""


@pytest.fixture
async def inline_only(
    settings: Settings, database_url: str, nats_url: str
) -> AsyncIterator[Gateway]:
    system = running_gateway(settings, database_url, nats_url, services=(PEOPLE, NO_LIVE_AUTH))
    async with system as running:
        yield running


async def test_each_people_command_is_seen_by_the_next_request_without_the_bus(
    inline_only: Gateway,
) -> None:
    admin, bob = inline_only.client(), inline_only.client()
    await register(admin, "root@example.com")
    bob_user = await register(bob, "bob@example.com")
    await login(admin, "root@example.com")
    await login(bob, "bob@example.com")
    assert (await bob.get("/api/v1/me")).json()["role"] == "requester"

    changed = await admin.patch(f"/api/v1/users/{bob_user['id']}", json={"role": "operator"})
    assert changed.status_code == 200
    assert (await bob.get("/api/v1/me")).json()["role"] == "operator"

    created = await bob.post("/api/v1/tokens", json={"name": "ci", "scopes": ["api"]})
    headers = {"Authorization": f"Bearer {created.json()['token']}"}
    assert (await inline_only.client().get("/api/v1/me", headers=headers)).status_code == 200
    assert (await bob.delete(f"/api/v1/tokens/{created.json()['id']}")).status_code == 204
    assert (await inline_only.client().get("/api/v1/me", headers=headers)).status_code == 401

    assert (await bob.post("/api/v1/auth/logout")).status_code == 204
    assert (await bob.get("/api/v1/me")).status_code == 401


async def test_no_password_hash_is_kept_by_the_gateway(inline_only: Gateway) -> None:
    await register(inline_only.client(), "hash@example.com")
    columns = await inline_only.deps.pool.fetch(
        "SELECT table_name, column_name FROM information_schema.columns "
        "WHERE table_schema = 'gateway'"
    )
    assert columns and not [c for c in columns if "password" in c["column_name"]]
