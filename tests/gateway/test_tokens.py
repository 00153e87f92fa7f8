"""API tokens: shown once and stored as a digest, Bearer access by scope, revocation."""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import FastAPI

from libs.contracts.people import digest
from services.gateway.auth import IngestToken, OptionalUser
from tests.gateway.helpers import Gateway, SignedIn


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def make_token(client: httpx.AsyncClient, *scopes: str, name: str = "ci") -> dict[str, Any]:
    response = await client.post("/api/v1/tokens", json={"name": name, "scopes": list(scopes)})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def add_probes(app: FastAPI) -> None:
    """Routes guarded by IngestToken and OptionalUser (the real ones belong to other issues)."""

    @app.post("/probe/ingest")
    async def ingest(who: IngestToken) -> dict[str, str]:
        return {"user_id": who.user_id, "actor": who.actor.kind.value}

    @app.get("/probe/optional")
    async def optional(who: OptionalUser) -> dict[str, str | None]:
        return {"user_id": who.user_id if who else None}


async def test_a_token_is_shown_once_stored_as_a_digest_and_works_as_bearer(
    gateway: Gateway, signed_in: SignedIn
) -> None:
    client, user = await signed_in("ops@example.com")
    created = await make_token(client, "api", name="deploy script")
    assert set(created) == {"id", "token", "name", "scopes"}
    assert created["scopes"] == ["api"]
    listed = (await client.get("/api/v1/tokens")).json()
    assert [t["id"] for t in listed["items"]] == [created["id"]]
    assert "token" not in listed["items"][0] and created["token"] not in repr(listed)
    stored = await gateway.deps.pool.fetchval("SELECT token_hash FROM gateway.tokens")
    assert stored == digest(created["token"])
    events = await gateway.deps.pool.fetch("SELECT data FROM eventstore.events")
    assert created["token"] not in repr([e["data"] for e in events])
    me = await gateway.client().get("/api/v1/me", headers=bearer(created["token"]))
    assert me.status_code == 200
    assert me.json()["id"] == user["id"]


async def test_an_ingest_only_token_is_refused_on_api_routes_and_accepted_for_ingest(
    gateway: Gateway, signed_in: SignedIn
) -> None:
    add_probes(gateway.app)
    client, user = await signed_in("mon@example.com")
    ingest = (await make_token(client, "ingest"))["token"]
    anon = gateway.client()
    refused = await anon.get("/api/v1/me", headers=bearer(ingest))
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "FORBIDDEN"
    accepted = await anon.post("/probe/ingest", headers=bearer(ingest))
    assert accepted.status_code == 200
    assert accepted.json() == {"user_id": user["id"], "actor": "token"}
    assert (await anon.get("/probe/optional", headers=bearer(ingest))).json() == {"user_id": None}


async def test_ingest_routes_need_a_token_with_the_ingest_scope(
    gateway: Gateway, signed_in: SignedIn
) -> None:
    add_probes(gateway.app)
    client, _ = await signed_in("web@example.com")
    api = (await make_token(client, "api"))["token"]
    assert (await client.post("/probe/ingest")).status_code == 401  # a session is not a token
    assert (await gateway.client().post("/probe/ingest")).status_code == 401
    wrong_scope = await gateway.client().post("/probe/ingest", headers=bearer(api))
    assert wrong_scope.status_code == 403


async def test_a_revoked_token_is_refused(gateway: Gateway, signed_in: SignedIn) -> None:
    client, _ = await signed_in("rev@example.com")
    created = await make_token(client, "api", "ingest")
    assert (await client.delete(f"/api/v1/tokens/{created['id']}")).status_code == 204
    response = await gateway.client().get("/api/v1/me", headers=bearer(created["token"]))
    assert response.status_code == 401
    assert (await client.get("/api/v1/tokens")).json()["items"] == []
    assert (await client.delete(f"/api/v1/tokens/{created['id']}")).status_code == 204


async def test_someone_elses_token_cannot_be_revoked(gateway: Gateway, signed_in: SignedIn) -> None:
    owner, _ = await signed_in("own@example.com")
    other, _ = await signed_in("other@example.com")
    created = await make_token(owner, "api")
    assert (await other.delete(f"/api/v1/tokens/{created['id']}")).status_code == 404
    assert (await other.get("/api/v1/tokens")).json()["items"] == []
    me = await gateway.client().get("/api/v1/me", headers=bearer(created["token"]))
    assert me.status_code == 200


async def test_malformed_or_forged_bearer_tokens_are_unauthenticated(
    gateway: Gateway, signed_in: SignedIn
) -> None:
    client, _ = await signed_in("forge@example.com")
    real = (await make_token(client, "api"))["token"]
    forged = real[:-2] + ("AA" if not real.endswith("AA") else "BB")
    anon = gateway.client()
    for header in [
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer nonsense"},
        {"Authorization": f"Basic {real}"},
        bearer(forged),
        bearer("olt_00000000000000000000000000000000_x"),
    ]:
        response = await anon.get("/api/v1/me", headers=header)
        assert response.status_code == 401, header


async def test_a_bad_bearer_header_is_not_rescued_by_a_session_cookie(signed_in: SignedIn) -> None:
    client, _ = await signed_in("both@example.com")
    assert (await client.get("/api/v1/me", headers=bearer("nonsense"))).status_code == 401


async def test_tokens_are_created_from_a_session_not_with_a_token(
    gateway: Gateway, signed_in: SignedIn
) -> None:
    client, _ = await signed_in("mint@example.com")
    token = (await make_token(client, "api"))["token"]
    response = await gateway.client().post(
        "/api/v1/tokens", json={"name": "more", "scopes": ["api"]}, headers=bearer(token)
    )
    assert response.status_code == 403


async def test_token_requests_are_validated(signed_in: SignedIn) -> None:
    client, _ = await signed_in("val@example.com")
    for body in [
        {"name": "x", "scopes": []},
        {"name": "x", "scopes": ["admin"]},
        {"name": "", "scopes": ["api"]},
        {"scopes": ["api"]},
    ]:
        assert (await client.post("/api/v1/tokens", json=body)).status_code == 422, body
    assert (await client.delete("/api/v1/tokens/not-a-uuid")).status_code == 422
