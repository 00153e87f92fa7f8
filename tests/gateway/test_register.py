"""Registration: the first user is admin exactly once, emails are unique under races, input is
validated, and passwords are stored only as argon2 hashes."""

from __future__ import annotations

import asyncio
import json

import pytest

from tests.gateway.helpers import PASSWORD, Gateway, register

URL = "/api/v1/auth/register"


async def test_twenty_concurrent_registrations_make_exactly_one_admin(gateway: Gateway) -> None:
    clients = [gateway.client(f"10.0.0.{i}") for i in range(20)]
    responses = await asyncio.gather(
        *(
            c.post(URL, json={"email": f"u{i}@example.com", "name": f"U{i}", "password": PASSWORD})
            for i, c in enumerate(clients)
        )
    )
    assert [r.status_code for r in responses] == [201] * 20
    roles = [r.json()["role"] for r in responses]
    assert roles.count("admin") == 1
    assert roles.count("requester") == 19
    stored = await gateway.deps.pool.fetch("SELECT role FROM people.users")
    assert sorted(r["role"] for r in stored) == ["admin"] + ["requester"] * 19


async def test_the_same_email_registered_concurrently_succeeds_exactly_once(
    gateway: Gateway,
) -> None:
    spellings = ["dup@x.io", "DUP@x.io", " Dup@X.io ", "dUp@x.IO", "dup@X.IO"]
    responses = await asyncio.gather(
        *(
            gateway.client(f"10.0.1.{i}").post(
                URL, json={"email": email, "name": "Dup", "password": PASSWORD}
            )
            for i, email in enumerate(spellings)
        )
    )
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201] + [409] * 4
    refused = [r.json() for r in responses if r.status_code == 409]
    assert {body["error"]["code"] for body in refused} == {"EMAIL_TAKEN"}
    assert await gateway.deps.pool.fetchval("SELECT count(*) FROM people.users") == 1


async def test_the_first_user_is_admin_and_later_ones_are_requesters(gateway: Gateway) -> None:
    first = await register(gateway.client(), "first@example.com")
    second = await register(gateway.client(), "second@example.com")
    assert (first["role"], second["role"]) == ("admin", "requester")
    assert set(first) == {"id", "email", "name", "role"}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"email": "not-an-email", "name": "A", "password": PASSWORD}, "email"),
        ({"email": "a@b", "name": "A", "password": PASSWORD}, "email"),
        ({"email": "a b@example.com", "name": "A", "password": PASSWORD}, "email"),
        ({"email": "a@example.com", "name": "A", "password": "short"}, "password"),
        ({"email": "a@example.com", "name": "A", "password": "x" * 1025}, "password"),
        ({"email": "a@example.com", "name": "   ", "password": PASSWORD}, "name"),
        ({"email": "a@example.com", "password": PASSWORD}, "name"),
        ({"email": "a@example.com", "name": "A", "password": PASSWORD, "role": "admin"}, "role"),
    ],
)
async def test_invalid_registration_is_refused_with_422(
    gateway: Gateway, body: dict[str, str], field: str
) -> None:
    response = await gateway.client().post(URL, json=body)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "VALIDATION_ERROR"
    assert field in error["details"]


async def test_a_password_of_1024_characters_is_accepted(gateway: Gateway) -> None:
    strong = "Plum-Kettle-Orbit-9 " * 52  # passes the strength check (issue 7)
    await register(gateway.client(), "long@example.com", password=strong[:1024])


async def test_passwords_are_stored_as_argon2_and_never_in_plain(gateway: Gateway) -> None:
    secret_password = "plain-text-must-not-leak-42"
    await register(gateway.client(), "hash@example.com", password=secret_password)
    stored = await gateway.deps.pool.fetchval(
        "SELECT password_hash FROM people.users WHERE email = 'hash@example.com'"
    )
    assert stored.startswith("$argon2id$")
    events = await gateway.deps.pool.fetch("SELECT type, data FROM eventstore.events")
    assert secret_password not in json.dumps([dict(e) for e in events])
    registered = next(e for e in events if e["type"] == "user.registered")
    assert set(registered["data"]) == {"user_id", "email", "name", "role"}
    dump = await gateway.deps.pool.fetch("SELECT * FROM people.users")
    assert secret_password not in repr([dict(r) for r in dump])
