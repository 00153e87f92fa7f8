"""Roles: admins manage the team; changes apply on the next request; nobody changes their own
role, and the last admin is never demoted, even when admins demote each other at once."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from libs.events.envelope import Actor, ActorKind, Metadata
from libs.events.errors import ServiceError
from services.people.handlers import PeopleCommands
from tests.gateway.helpers import Gateway, SignedIn


async def set_role(client: httpx.AsyncClient, user_id: str, role: str) -> httpx.Response:
    return await client.patch(f"/api/v1/users/{user_id}", json={"role": role})


async def admin_count(gateway: Gateway) -> int:
    return int(
        await gateway.deps.pool.fetchval("SELECT count(*) FROM people.users WHERE role = 'admin'")
    )


async def test_a_role_change_takes_effect_on_the_next_request(signed_in: SignedIn) -> None:
    admin, _ = await signed_in("root@example.com")
    bob, bob_user = await signed_in("bob@example.com")
    assert (await bob.get("/api/v1/users")).status_code == 403
    response = await set_role(admin, bob_user["id"], "admin")
    assert response.status_code == 200
    assert response.json()["role"] == "admin"
    assert (await bob.get("/api/v1/me")).json()["role"] == "admin"  # same session, new role
    assert (await bob.get("/api/v1/users")).status_code == 200
    assert (await set_role(admin, bob_user["id"], "operator")).status_code == 200
    assert (await bob.get("/api/v1/users")).status_code == 403


async def test_an_admin_cannot_change_their_own_role(signed_in: SignedIn) -> None:
    admin, me = await signed_in("root@example.com")
    response = await set_role(admin, me["id"], "requester")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "CANNOT_CHANGE_OWN_ROLE"


@pytest.mark.parametrize("role", ["requester", "operator"])
async def test_only_admins_list_users_or_change_roles(signed_in: SignedIn, role: str) -> None:
    admin, _ = await signed_in("root@example.com")
    other, other_user = await signed_in("other@example.com")
    _, target = await signed_in("target@example.com")
    await set_role(admin, other_user["id"], role)
    assert (await other.get("/api/v1/users")).status_code == 403
    response = await set_role(other, target["id"], "admin")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "FORBIDDEN"


async def test_changing_the_role_of_an_unknown_user_is_404(signed_in: SignedIn) -> None:
    admin, _ = await signed_in("root@example.com")
    assert (await set_role(admin, "no-such-user", "operator")).status_code == 404
    response = await admin.patch("/api/v1/users/x", json={"role": "superuser"})
    assert response.status_code == 422


async def test_the_last_admin_cannot_be_demoted(gateway: Gateway, signed_in: SignedIn) -> None:
    """An admin whose own demotion has just committed still holds a request authenticated as
    admin: the decision is made on the admin set in the store, so it refuses."""
    admin, root = await signed_in("root@example.com")
    _, bob = await signed_in("bob@example.com")
    assert (await set_role(admin, bob["id"], "admin")).status_code == 200
    assert (await set_role(admin, bob["id"], "requester")).status_code == 200
    with pytest.raises(ServiceError) as refused:
        await PeopleCommands(gateway.deps).change_role(
            actor_id=bob["id"],
            user_id=root["id"],
            role="requester",
            meta=Metadata(actor=Actor(kind=ActorKind.USER, id=bob["id"]), service="people"),
        )
    assert (refused.value.status, refused.value.code) == (409, "LAST_ADMIN")
    assert await admin_count(gateway) == 1


async def test_two_admins_demoting_each_other_at_once_leave_one_admin(
    gateway: Gateway, signed_in: SignedIn
) -> None:
    holder, holder_user = await signed_in("root@example.com", ip="10.1.0.1")
    for round_no in range(5):
        rival, rival_user = await signed_in(f"rival{round_no}@example.com", ip=f"10.1.1.{round_no}")
        assert (await set_role(holder, rival_user["id"], "admin")).status_code == 200
        first, second = await asyncio.gather(
            set_role(holder, rival_user["id"], "requester"),
            set_role(rival, holder_user["id"], "requester"),
        )
        statuses = sorted((first.status_code, second.status_code))
        assert statuses in ([200, 403], [200, 409]), (first.text, second.text)
        if 409 in statuses:
            loser = first if first.status_code == 409 else second
            assert loser.json()["error"]["code"] == "LAST_ADMIN"
        assert await admin_count(gateway) == 1
        if second.status_code == 200:  # the rival won: they hold the admin role now
            holder, holder_user = rival, rival_user


async def test_users_are_listed_in_pages(signed_in: SignedIn, gateway: Gateway) -> None:
    admin, _ = await signed_in("root@example.com")
    for i in range(4):
        await signed_in(f"member{i}@example.com", ip=f"10.2.0.{i}")
    seen: list[str] = []
    cursor: str | None = None
    while True:
        params: dict[str, str | int] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = (await admin.get("/api/v1/users", params=params)).json()
        seen.extend(item["email"] for item in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ["root@example.com"] + [f"member{i}@example.com" for i in range(4)]
