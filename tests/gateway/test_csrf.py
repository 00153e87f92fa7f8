"""A state-changing request a browser sends from another site is refused (403 CROSS_SITE), by
Sec-Fetch-Site or else Origin; same-origin browser requests, non-browser clients (neither header)
and API-token requests go through."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from libs.events.settings import Settings
from tests.gateway.helpers import PASSWORD, Gateway, SignedIn, running_gateway

EVIL = "https://evil.example"


def refused_as_cross_site(response: httpx.Response) -> bool:
    return response.status_code == 403 and response.json()["error"]["code"] == "CROSS_SITE"


async def _new_token(client: httpx.AsyncClient, headers: dict[str, str]) -> httpx.Response:
    return await client.post(
        "/api/v1/tokens", json={"name": "laptop", "scopes": ["api"]}, headers=headers
    )


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": EVIL},
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site", "Origin": "https://other.test"},
        {"Sec-Fetch-Site": "cross-site", "Origin": "http://test"},
        {"Origin": "null"},
    ],
)
async def test_a_cookie_request_from_another_site_is_refused_and_does_nothing(
    signed_in: SignedIn, headers: dict[str, str]
) -> None:
    client, _ = await signed_in("admin@example.com")
    refused = await _new_token(client, headers)
    assert refused_as_cross_site(refused), refused.text
    listed = await client.get("/api/v1/tokens")
    assert listed.json()["items"] == []


@pytest.mark.parametrize(
    "headers",
    [
        {"Sec-Fetch-Site": "same-origin", "Origin": "http://test"},
        {"Sec-Fetch-Site": "none"},
        {"Origin": "http://test"},
        {},  # not a browser: curl, scripts
    ],
)
async def test_a_cookie_request_from_our_own_origin_goes_through(
    signed_in: SignedIn, headers: dict[str, str]
) -> None:
    client, _ = await signed_in("admin@example.com")
    made = await _new_token(client, headers)
    assert made.status_code == 201, made.text


async def test_logout_from_another_site_is_refused_and_the_session_lives_on(
    signed_in: SignedIn,
) -> None:
    client, _ = await signed_in("admin@example.com")
    refused = await client.post("/api/v1/auth/logout", headers={"Sec-Fetch-Site": "cross-site"})
    assert refused_as_cross_site(refused), refused.text
    assert (await client.get("/api/v1/me")).status_code == 200


async def test_a_foreign_page_cannot_sign_a_browser_in(gateway: Gateway) -> None:
    client = gateway.client()
    registered = await client.post(
        "/api/v1/auth/register",
        json={"email": "a@example.com", "name": "A", "password": PASSWORD},
        headers={"Origin": EVIL},
    )
    assert refused_as_cross_site(registered), registered.text


async def test_a_token_request_is_never_refused_as_cross_site(signed_in: SignedIn) -> None:
    client, _ = await signed_in("admin@example.com")
    token: dict[str, Any] = (await _new_token(client, {})).json()
    revoked = await client.delete(
        f"/api/v1/tokens/{token['id']}",
        # the client still holds its session cookie: the token is what authenticates this
        headers={"Authorization": f"Bearer {token['token']}", "Origin": EVIL},
    )
    assert revoked.status_code == 204, revoked.text


async def test_safe_methods_are_not_checked(signed_in: SignedIn) -> None:
    client, _ = await signed_in("admin@example.com")
    me = await client.get("/api/v1/me", headers={"Sec-Fetch-Site": "cross-site", "Origin": EVIL})
    assert me.status_code == 200


async def test_the_public_url_is_our_origin_behind_a_proxy_that_rewrites_host(
    settings: Settings, database_url: str, nats_url: str
) -> None:
    public = settings.model_copy(update={"public_url": "https://desk.example.com/"})
    async with running_gateway(public, database_url, nats_url) as gateway:
        client = gateway.client()
        registered = await client.post(
            "/api/v1/auth/register",
            json={"email": "a@example.com", "name": "A", "password": PASSWORD},
            headers={"Origin": "https://desk.example.com", "Sec-Fetch-Site": "same-site"},
        )
        assert registered.status_code == 201, registered.text
