"""X-Forwarded-For / X-Forwarded-Proto are believed only from OPSLEDGER_TRUSTED_PROXIES, over
real HTTP (uvicorn's own proxy-header handling would believe anyone on the host): a spoofed
address does not escape the per-address limits, and behind a trusted proxy the client's address
and the cookie's Secure flag follow the forwarded values."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable

import httpx

from libs.events.settings import Settings
from services.gateway.app import SERVICE as GATEWAY
from services.people.app import SERVICE as PEOPLE
from tests.gateway.helpers import PASSWORD
from tests.gateway.live_server import served_gateway

ATTEMPTS = 12
"""More registrations than one address may make in the window (10)."""


@contextlib.asynccontextmanager
async def client_of(
    settings: Settings, database_url: str, nats_url: str, *, trusted: str = ""
) -> AsyncIterator[httpx.AsyncClient]:
    # the default window is a minute, fixed: twelve registrations that straddle its end start
    # counting again (the limit is then never reached); an hour's window makes that a 1-in-3,000
    limits = {**settings.rate_limits, "register-ip": (10, 3600)}
    tuned = settings.model_copy(update={"trusted_proxies": trusted, "rate_limits": limits})
    async with (
        served_gateway(tuned, database_url, nats_url, services=(PEOPLE, GATEWAY)) as served,
        httpx.AsyncClient(base_url=served.base, timeout=10) as client,
    ):
        yield client


async def first_limited(client: httpx.AsyncClient, forwarded_for: Callable[[int], str]) -> int:
    """The attempt (1-based) at which registering was rate limited; 0: never."""
    for attempt in range(1, ATTEMPTS + 1):
        response = await client.post(
            "/api/v1/auth/register",
            json={"email": f"u{attempt}@example.com", "name": "U", "password": PASSWORD},
            headers={"X-Forwarded-For": forwarded_for(attempt)},
        )
        if response.status_code == 429:
            return attempt
        assert response.status_code == 201, response.text
    return 0


async def test_a_spoofed_forwarded_for_does_not_escape_the_per_address_limit(
    settings: Settings, database_url: str, nats_url: str
) -> None:
    async with client_of(settings, database_url, nats_url) as client:
        assert await first_limited(client, lambda n: f"203.0.113.{n}") == 11


async def test_behind_a_trusted_proxy_each_forwarded_client_has_its_own_limit(
    settings: Settings, database_url: str, nats_url: str
) -> None:
    async with client_of(settings, database_url, nats_url, trusted="127.0.0.0/8") as client:
        assert await first_limited(client, lambda n: f"203.0.113.{n}") == 0


async def test_addresses_left_of_the_first_untrusted_hop_are_not_believed(
    settings: Settings, database_url: str, nats_url: str
) -> None:
    trusted = "127.0.0.0/8,10.0.0.0/8"
    async with client_of(settings, database_url, nats_url, trusted=trusted) as client:
        # the client made up the first entry; our proxies appended the rest
        limited = await first_limited(client, lambda n: f"198.51.100.{n}, 203.0.113.7, 10.1.2.3")
        assert limited == 11


async def test_the_cookie_is_secure_when_a_trusted_proxy_says_the_client_used_https(
    settings: Settings, database_url: str, nats_url: str
) -> None:
    async def cookie_flags(email: str, *, trusted: str) -> list[str]:
        async with client_of(settings, database_url, nats_url, trusted=trusted) as client:
            registered = await client.post(
                "/api/v1/auth/register", json={"email": email, "name": "A", "password": PASSWORD}
            )
            assert registered.status_code == 201, registered.text
            login = await client.post(
                "/api/v1/auth/login",
                json={"email": email, "password": PASSWORD},
                headers={"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"},
            )
            assert login.status_code == 200, login.text
            return login.headers["set-cookie"].lower().split("; ")

    assert "secure" in await cookie_flags("a@example.com", trusted="127.0.0.1/32")
    assert "secure" not in await cookie_flags("b@example.com", trusted="")
