"""Rate limits on login and registration: 429 RATE_LIMITED with Retry-After, per address and per
account, counted in Postgres so the limit holds across gateway replicas."""

from __future__ import annotations

from dataclasses import replace

import httpx

from libs.events.settings import Settings
from services.gateway.people.ratelimit import Limit, RateLimits
from tests.gateway.helpers import PASSWORD, Gateway, register, running_gateway

LOGIN = "/api/v1/auth/login"
# Small limits with an hour-long window, so a test never straddles a window's end.
TIGHT = RateLimits(
    register_per_ip=Limit("register-ip", 3, 3600),
    register_per_email=Limit("register-email", 5, 3600),
    login_per_ip=Limit("login-ip", 4, 3600),
    login_failures_per_account=Limit("login-failed", 3, 3600),
)


async def attempt(client: httpx.AsyncClient, email: str, password: str) -> int:
    response = await client.post(LOGIN, json={"email": email, "password": password})
    return response.status_code


def assert_rate_limited(response: httpx.Response) -> None:
    assert response.status_code == 429
    assert response.json()["error"]["code"] == "RATE_LIMITED"
    retry_after = int(response.headers["retry-after"])
    assert 1 <= retry_after <= 3600
    assert response.json()["error"]["details"]["retry_after"] == retry_after


async def test_logins_over_the_per_address_limit_get_429_with_retry_after(
    gateway: Gateway,
) -> None:
    gateway.app.state.rate_limits = TIGHT
    client = gateway.client("10.9.0.1")
    statuses = [await attempt(client, f"nobody{i}@example.com", "wrong-guess") for i in range(4)]
    assert statuses == [401] * 4
    assert_rate_limited(await client.post(LOGIN, json={"email": "x@y.io", "password": "whatever"}))
    assert await attempt(gateway.client("10.9.0.2"), "nobody@example.com", "guess") == 401


async def test_failed_logins_on_one_account_are_limited_from_that_address(
    gateway: Gateway,
) -> None:
    """Issue 7 turned this around: failures from one address lock that address out of the
    account (even with the right password), not the account's owner elsewhere."""
    gateway.app.state.rate_limits = TIGHT
    await register(gateway.client(), "target@example.com")
    attacker = gateway.client("10.8.0.1")
    for _ in range(3):
        assert await attempt(attacker, "target@example.com", "guess") == 401
    locked = await attacker.post(LOGIN, json={"email": "Target@example.com", "password": PASSWORD})
    assert_rate_limited(locked)
    assert await attempt(gateway.client("10.8.1.1"), "target@example.com", PASSWORD) == 200


async def test_a_successful_login_is_not_counted_as_a_failure(gateway: Gateway) -> None:
    gateway.app.state.rate_limits = replace(TIGHT, login_per_ip=Limit("login-ip", 100, 3600))
    await register(gateway.client(), "ok@example.com")
    client = gateway.client("10.7.0.1")
    assert await attempt(client, "ok@example.com", "guess") == 401
    assert await attempt(client, "ok@example.com", "guess") == 401
    assert await attempt(client, "ok@example.com", PASSWORD) == 200
    assert await attempt(client, "ok@example.com", "guess") == 401
    assert await attempt(client, "ok@example.com", PASSWORD) == 429


async def test_registrations_over_the_per_address_limit_get_429(gateway: Gateway) -> None:
    gateway.app.state.rate_limits = TIGHT
    client = gateway.client("10.6.0.1")
    for i in range(3):
        await register(client, f"new{i}@example.com")
    response = await client.post(
        "/api/v1/auth/register",
        json={"email": "new9@example.com", "name": "N", "password": PASSWORD},
    )
    assert_rate_limited(response)


async def test_the_limit_holds_across_two_gateway_instances_sharing_the_database(
    settings: Settings, database_url: str, nats_url: str
) -> None:
    async with (
        running_gateway(settings, database_url, nats_url, replica="a") as first,
        running_gateway(settings, database_url, nats_url, replica="b") as second,
    ):
        first.app.state.rate_limits = second.app.state.rate_limits = TIGHT
        clients = [first.client("10.5.0.1"), second.client("10.5.0.1")]
        statuses = [
            await attempt(clients[i % 2], f"nobody{i}@example.com", "guess") for i in range(4)
        ]
        assert statuses == [401] * 4
        for client in clients:
            assert_rate_limited(await client.post(LOGIN, json={"email": "a@b.io", "password": "x"}))
