"""API tokens may expire: `expires_in` (seconds) or `expires_at` on creation; past it the token
is refused with 401 like a revoked one, and it leaves the list of live tokens."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx

from tests.gateway.helpers import Gateway, SignedIn


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def create(client: httpx.AsyncClient, **expiry: object) -> httpx.Response:
    return await client.post("/api/v1/tokens", json={"name": "ci", "scopes": ["api"], **expiry})


async def expire_now(gateway: Gateway, token_id: str) -> None:
    """Move the token's expiry into the past, as time would."""
    await gateway.deps.pool.execute(
        "UPDATE gateway.tokens SET expires_at = now() - interval '1 second' WHERE token_id = $1",
        token_id,
    )
    await gateway.deps.pool.execute(
        "UPDATE people.tokens SET expires_at = now() - interval '1 second' WHERE token_id = $1",
        token_id,
    )


async def test_a_token_works_until_it_expires_then_is_refused(
    gateway: Gateway, signed_in: SignedIn
) -> None:
    client, user = await signed_in("exp@example.com")
    made = await create(client, expires_in=3600)
    assert made.status_code == 201, made.text
    expires_at = datetime.fromisoformat(made.json()["expires_at"])
    assert timedelta(minutes=59) < expires_at - datetime.now(UTC) <= timedelta(hours=1)
    anon = gateway.client()
    me = await anon.get("/api/v1/me", headers=bearer(made.json()["token"]))
    assert me.status_code == 200 and me.json()["id"] == user["id"]
    await expire_now(gateway, made.json()["id"])
    refused = await anon.get("/api/v1/me", headers=bearer(made.json()["token"]))
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "UNAUTHENTICATED"
    assert (await client.get("/api/v1/tokens")).json()["items"] == []


async def test_an_expiry_given_as_a_time_is_kept_and_listed(signed_in: SignedIn) -> None:
    client, _ = await signed_in("at@example.com")
    when = (datetime.now(UTC) + timedelta(days=30)).replace(microsecond=0)
    made = await create(client, expires_at=when.isoformat())
    assert made.status_code == 201, made.text
    listed = (await client.get("/api/v1/tokens")).json()["items"]
    assert [datetime.fromisoformat(t["expires_at"]) for t in listed] == [when]


async def test_a_token_without_expiry_lasts_until_revoked(signed_in: SignedIn) -> None:
    client, _ = await signed_in("forever@example.com")
    made = await create(client)
    assert made.status_code == 201 and "expires_at" not in made.json()
    assert (await client.get("/api/v1/tokens")).json()["items"][0]["expires_at"] is None


async def test_bad_expiries_are_refused_with_422(signed_in: SignedIn) -> None:
    client, _ = await signed_in("bad@example.com")
    past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    future = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    bad: list[dict[str, object]] = [
        {"expires_at": past},
        {"expires_at": "2030-01-01T00:00:00"},  # no timezone
        {"expires_in": 5},
        {"expires_in": 10**10},
        {"expires_at": future, "expires_in": 3600},
        {"expires_at": "2100-01-01T00:00:00Z"},
    ]
    for expiry in bad:
        response = await create(client, **expiry)
        assert response.status_code == 422, (expiry, response.text)
        assert response.json()["error"]["code"] == "VALIDATION_ERROR"
    assert (await client.get("/api/v1/tokens")).json()["items"] == []


async def test_an_expired_token_cannot_open_the_live_stream(
    gateway: Gateway, signed_in: SignedIn
) -> None:
    client, _ = await signed_in("live@example.com")
    made = await create(client, expires_in=600)
    await expire_now(gateway, made.json()["id"])
    async with gateway.client().stream(
        "GET", "/api/v1/stream", headers=bearer(made.json()["token"])
    ) as answer:
        assert answer.status_code == 401
