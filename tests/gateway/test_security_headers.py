"""Every answer carries the security headers (nosniff, a referrer policy, no framing, no-store
when authenticated, HSTS when the public URL is https) and no server banner; the API docs load
their assets from the gateway itself; /metrics can move to a listener of its own."""

from __future__ import annotations

import dataclasses

import httpx

from libs.events.devstack import serve_metrics
from libs.events.embedded import free_port
from libs.events.settings import Settings
from services.gateway.app import create_app
from services.gateway.people.security import SESSION_COOKIE
from services.people.app import SERVICE as PEOPLE
from tests.gateway.helpers import Gateway, SignedIn, running_gateway
from tests.gateway.live_server import served_gateway

EVERY_ANSWER = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "content-security-policy": "frame-ancestors 'none'",
    "x-frame-options": "DENY",
}


async def test_answers_carry_the_security_headers_and_no_server_banner(
    settings: Settings, database_url: str, nats_url: str
) -> None:
    async with (
        served_gateway(settings, database_url, nats_url, services=(PEOPLE,)) as served,
        httpx.AsyncClient(base_url=served.base) as client,
    ):
        for path in ("/healthz", "/api/v1/no-such-route", "/openapi.json"):
            response = await client.get(path)
            assert "server" not in response.headers, path
            for name, value in EVERY_ANSWER.items():
                assert response.headers.get(name) == value, (path, name)
            assert "strict-transport-security" not in response.headers


async def test_answers_to_signed_in_users_are_not_stored(signed_in: SignedIn) -> None:
    client, _ = await signed_in("admin@example.com")
    me = await client.get("/api/v1/me")
    assert me.headers["cache-control"] == "no-store"
    login = await client.post(
        "/api/v1/auth/login", json={"email": "admin@example.com", "password": "wrong password!"}
    )
    assert login.headers["cache-control"] == "no-store"


async def test_a_token_answer_is_not_stored_either(signed_in: SignedIn) -> None:
    client, _ = await signed_in("admin@example.com")
    token = (await client.post("/api/v1/tokens", json={"name": "t", "scopes": ["api"]})).json()
    client.cookies.delete(SESSION_COOKIE)
    me = await client.get("/api/v1/me", headers={"Authorization": f"Bearer {token['token']}"})
    assert me.status_code == 200
    assert me.headers["cache-control"] == "no-store"


async def test_hsts_is_sent_when_the_public_url_is_https(
    settings: Settings, database_url: str, nats_url: str
) -> None:
    public = settings.model_copy(update={"public_url": "https://desk.example.com"})
    async with running_gateway(public, database_url, nats_url) as gateway:
        response = await gateway.client().get("/healthz")
    assert response.headers["strict-transport-security"] == "max-age=31536000"


async def test_the_docs_page_loads_its_assets_from_the_gateway(gateway: Gateway) -> None:
    client = gateway.client()
    for page, asset in (("/docs", "swagger-ui-bundle.js"), ("/redoc", "redoc.standalone.js")):
        html = (await client.get(page)).text
        assert f'"/docs/assets/{asset}"' in html, page
        assert "cdn." not in html and "https://" not in html.split("</title>", 1)[1], page
        served = await client.get(f"/docs/assets/{asset}")
        assert served.status_code == 200 and len(served.content) > 100_000, asset
    assert (await client.get("/docs/assets/swagger-ui.css")).status_code == 200


async def test_production_serves_no_metrics_on_the_public_app(gateway: Gateway) -> None:
    assert (await gateway.client().get("/metrics")).status_code == 200  # development, tests
    production = gateway.deps.settings.model_copy(update={"env": "production"})
    app = create_app(dataclasses.replace(gateway.deps, settings=production))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        assert (await client.get("/metrics")).status_code == 404


async def test_metrics_move_to_their_own_listener_when_given_a_port(gateway: Gateway) -> None:
    port = free_port()
    own = gateway.deps.settings.model_copy(update={"metrics_port": port})
    app = create_app(dataclasses.replace(gateway.deps, settings=own))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        assert (await client.get("/metrics")).status_code == 404
    running = await serve_metrics(own)
    assert running is not None
    server, serving = running
    try:
        async with httpx.AsyncClient() as client:
            scraped = await client.get(f"http://127.0.0.1:{port}/metrics")
        assert scraped.status_code == 200
        assert "opsledger_" in scraped.text
    finally:
        server.should_exit = True
        await serving
