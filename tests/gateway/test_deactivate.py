"""Stopping a person: an admin deactivates a user (every session and token ends at once, login
is refused, their history stays) and reactivates them (login again; old credentials stay dead).
The last active admin cannot be deactivated."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from libs.contracts import people as contract
from libs.events.catalog.people import TokenCreated
from libs.events.contract import ask
from libs.events.envelope import Actor, ActorKind, Metadata, new_id
from libs.events.errors import ServiceError
from libs.events.replay import replay_service
from libs.events.runtime import Service
from libs.events.store import NO_STREAM
from services.gateway.app import SERVICE as GATEWAY
from services.people.app import SERVICE as PEOPLE
from services.people.domain import token_stream
from tests.gateway.helpers import PASSWORD, Gateway, SignedIn, login, settle
from tests.gateway.test_people_projection import snapshot

LOGIN = "/api/v1/auth/login"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def set_active(admin: httpx.AsyncClient, user_id: str, active: bool) -> httpx.Response:
    return await admin.patch(f"/api/v1/users/{user_id}", json={"active": active})


async def token_of(client: httpx.AsyncClient) -> str:
    made = await client.post("/api/v1/tokens", json={"name": "ci", "scopes": ["api"]})
    assert made.status_code == 201, made.text
    token: str = made.json()["token"]
    return token


async def members(admin: httpx.AsyncClient) -> dict[str, dict[str, Any]]:
    return {u["id"]: u for u in (await admin.get("/api/v1/users")).json()["items"]}


async def test_deactivating_ends_every_session_and_token_at_once(
    gateway: Gateway, signed_in: SignedIn
) -> None:
    admin, _ = await signed_in("boss@example.com")
    laptop, leaver = await signed_in("leaver@example.com")
    phone = gateway.client()
    await login(phone, "leaver@example.com")
    token = await token_of(laptop)
    answer = await set_active(admin, leaver["id"], False)
    assert answer.status_code == 200, answer.text
    assert (answer.json()["id"], answer.json()["active"]) == (leaver["id"], False)
    for client in (laptop, phone):
        assert (await client.get("/api/v1/me")).status_code == 401
    assert (await gateway.client().get("/api/v1/me", headers=bearer(token))).status_code == 401
    assert (await members(admin))[leaver["id"]]["active"] is False


async def test_a_deactivated_user_cannot_sign_in_and_only_the_right_password_learns_why(
    gateway: Gateway, signed_in: SignedIn
) -> None:
    admin, _ = await signed_in("boss@example.com")
    _, leaver = await signed_in("gone@example.com")
    await set_active(admin, leaver["id"], False)
    right = await gateway.client().post(
        LOGIN, json={"email": "gone@example.com", "password": PASSWORD}
    )
    assert right.status_code == 403
    assert right.json()["error"]["code"] == "ACCOUNT_DISABLED"
    wrong = await gateway.client().post(
        LOGIN, json={"email": "gone@example.com", "password": "not-the-password"}
    )
    unknown = await gateway.client().post(
        LOGIN, json={"email": "nobody@example.com", "password": "not-the-password"}
    )
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json()


async def test_reactivation_restores_login_but_not_the_old_sessions_or_tokens(
    gateway: Gateway, signed_in: SignedIn
) -> None:
    admin, _ = await signed_in("boss@example.com")
    old, user = await signed_in("back@example.com")
    token = await token_of(old)
    await set_active(admin, user["id"], False)
    back = await set_active(admin, user["id"], True)
    assert back.status_code == 200 and back.json()["active"] is True
    assert (await old.get("/api/v1/me")).status_code == 401
    assert (await gateway.client().get("/api/v1/me", headers=bearer(token))).status_code == 401
    fresh = gateway.client()
    await login(fresh, "back@example.com")
    assert (await fresh.get("/api/v1/me")).status_code == 200


async def test_the_history_of_a_deactivated_user_is_kept(
    gateway: Gateway, signed_in: SignedIn
) -> None:
    admin, boss = await signed_in("boss@example.com")
    _, user = await signed_in("history@example.com")
    await set_active(admin, user["id"], False)
    events = await admin.get("/api/v1/events", params={"stream": f"user-{user['id']}"})
    assert events.status_code == 200, events.text
    items = events.json()["items"]
    assert [e["type"] for e in items][:1] == ["user.registered"]
    deactivated = [e for e in items if e["type"] == "user.deactivated"]
    assert len(deactivated) == 1 and deactivated[0]["metadata"]["actor"]["id"] == boss["id"]
    assert user["id"] in await members(admin)


async def test_an_admin_cannot_deactivate_themselves(signed_in: SignedIn) -> None:
    admin, me = await signed_in("only@example.com")
    refused = await set_active(admin, me["id"], False)
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "CANNOT_DEACTIVATE_SELF"
    assert (await admin.get("/api/v1/me")).status_code == 200


async def test_two_admins_deactivating_each_other_at_once_leave_one_active_admin(
    gateway: Gateway, signed_in: SignedIn
) -> None:
    first, one = await signed_in("one@example.com")
    second, two = await signed_in("two@example.com")
    promoted = await first.patch(f"/api/v1/users/{two['id']}", json={"role": "admin"})
    assert promoted.status_code == 200, promoted.text
    answers = await asyncio.gather(
        set_active(first, two["id"], False), set_active(second, one["id"], False)
    )
    assert [a.status_code for a in answers].count(200) == 1, [a.text for a in answers]
    refused = next(a for a in answers if a.status_code != 200)
    assert refused.status_code in (401, 403, 409), refused.text
    survivors = [c for c in (first, second) if (await c.get("/api/v1/me")).status_code == 200]
    assert len(survivors) == 1


async def test_only_admins_deactivate_and_a_patch_must_say_something(
    gateway: Gateway, signed_in: SignedIn
) -> None:
    admin, _ = await signed_in("boss@example.com")
    requester, user = await signed_in("plain@example.com")
    assert (await set_active(requester, user["id"], False)).status_code == 403
    empty = await admin.patch(f"/api/v1/users/{user['id']}", json={})
    assert empty.status_code == 422
    both = await admin.patch(
        f"/api/v1/users/{user['id']}", json={"role": "operator", "active": False}
    )
    assert both.status_code == 200, both.text
    assert both.json()["role"] == "operator" and both.json()["active"] is False


@pytest.mark.parametrize("service", [PEOPLE, GATEWAY], ids=["people", "gateway"])
async def test_a_rebuild_from_the_log_keeps_the_deactivated_user_stopped(
    gateway: Gateway, signed_in: SignedIn, service: Service
) -> None:
    admin, _ = await signed_in("boss@example.com")
    old, user = await signed_in("rebuilt@example.com")
    token = await token_of(old)
    await set_active(admin, user["id"], False)
    await set_active(admin, user["id"], True)
    await settle(gateway.deps)
    live = await snapshot(gateway, service.name)
    assert await replay_service(service, gateway.deps) > 0
    assert await snapshot(gateway, service.name) == live
    assert (await old.get("/api/v1/me")).status_code == 401
    assert (await gateway.client().get("/api/v1/me", headers=bearer(token))).status_code == 401
    assert (await members(admin))[user["id"]]["active"] is True


async def test_a_token_request_arriving_after_the_deactivation_is_refused(
    gateway: Gateway, signed_in: SignedIn
) -> None:
    admin, _ = await signed_in("boss@example.com")
    _, leaver = await signed_in("leaver@example.com")
    assert (await set_active(admin, leaver["id"], False)).status_code == 200
    with pytest.raises(ServiceError) as refused:  # authenticated before, arriving now
        await ask(
            gateway.deps.rpc,
            contract.CREATE_TOKEN,
            contract.TokenIn(name="in flight", scopes=["api"]),
            actor=Actor(kind=ActorKind.USER, id=leaver["id"]),
            role="requester",
            on_behalf_of=leaver["id"],
        )
    assert (refused.value.status, refused.value.code) == (403, "ACCOUNT_DISABLED")
    assert await gateway.deps.pool.fetchval("SELECT count(*) FROM people.tokens") == 0


async def test_a_token_created_for_a_deactivated_user_starts_revoked(
    gateway: Gateway, signed_in: SignedIn
) -> None:
    """As a login that raced the deactivation starts ended: the read models end a token written
    for a user already deactivated, so the reactivation does not bring it to life."""
    admin, _ = await signed_in("boss@example.com")
    _, leaver = await signed_in("leaver@example.com")
    assert (await set_active(admin, leaver["id"], False)).status_code == 200
    token_id = str(new_id())
    token = contract.format_token(token_id, "s" * 43)
    created = TokenCreated(
        token_id=token_id,
        user_id=leaver["id"],
        name="raced",
        scopes=["api"],
        token_hash=contract.digest(token),
        expires_at=None,
    )
    meta = Metadata(actor=Actor(kind=ActorKind.USER, id=leaver["id"]), service="people")
    await gateway.deps.store.append(
        token_stream(token_id), [created], expected_version=NO_STREAM, metadata=meta
    )
    await settle(gateway.deps)
    assert (await set_active(admin, leaver["id"], True)).status_code == 200
    await settle(gateway.deps)
    assert (await gateway.client().get("/api/v1/me", headers=bearer(token))).status_code == 401
    for table in ("gateway.tokens", "people.tokens"):
        revoked = await gateway.deps.pool.fetchval(
            f"SELECT revoked_at IS NOT NULL FROM {table} WHERE token_id = $1", token_id
        )
        assert revoked is True, table
