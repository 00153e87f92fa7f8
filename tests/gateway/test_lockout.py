"""Failed logins slow the one who fails, not the account's owner: counted per (account,
address) and per address, with an account-wide count that only takes second tries away."""

from __future__ import annotations

import httpx

from libs.events.settings import Settings
from services.gateway.people.ratelimit import RateLimits
from tests.gateway.helpers import PASSWORD, Gateway, register

LOGIN = "/api/v1/auth/login"


async def attempt(client: httpx.AsyncClient, email: str, password: str) -> httpx.Response:
    return await client.post(LOGIN, json={"email": email, "password": password})


def assert_rate_limited(response: httpx.Response) -> None:
    assert response.status_code == 429, response.text
    assert response.json()["error"]["code"] == "RATE_LIMITED"
    assert int(response.headers["retry-after"]) >= 1


def limits(overrides: str) -> RateLimits:
    return RateLimits.from_settings(Settings(rate_limits=overrides))


async def test_an_attacker_failing_twenty_times_does_not_lock_the_owner_out(
    gateway: Gateway,
) -> None:
    await register(gateway.client(), "victim@example.com")
    attacker = gateway.client("203.0.113.7")
    answers = [
        (await attempt(attacker, "victim@example.com", f"guess-{i}")).status_code for i in range(20)
    ]
    assert set(answers) == {401, 429} and answers[0] == 401
    owner = gateway.client("198.51.100.20")
    assert (await attempt(owner, "victim@example.com", PASSWORD)).status_code == 200
    assert (await owner.get("/api/v1/me")).status_code == 200


async def test_the_attacker_is_refused_even_with_the_right_password(gateway: Gateway) -> None:
    gateway.app.state.rate_limits = limits("login-ip=100/3600,login-failed=5/3600")
    await register(gateway.client(), "target@example.com")
    attacker = gateway.client("203.0.113.8")
    for i in range(5):
        assert (await attempt(attacker, "target@example.com", f"no-{i}")).status_code == 401
    right = await attempt(attacker, "target@example.com", PASSWORD)
    assert_rate_limited(right)
    assert "opsledger_session" not in attacker.cookies


async def test_an_address_failing_across_many_accounts_is_refused(gateway: Gateway) -> None:
    gateway.app.state.rate_limits = limits("login-ip=100/3600,login-failed-ip=6/3600")
    await register(gateway.client(), "real@example.com")
    sprayer = gateway.client("203.0.113.9")
    for i in range(6):
        response = await attempt(sprayer, f"user{i}@example.com", "Summer2026!")
        assert response.status_code == 401
    assert_rate_limited(await attempt(sprayer, "real@example.com", PASSWORD))
    assert (await attempt(gateway.client("198.51.100.1"), "real@example.com", PASSWORD)).is_success


async def test_past_the_account_wide_limit_an_address_gets_no_second_guess(
    gateway: Gateway,
) -> None:
    gateway.app.state.rate_limits = limits("login-failed-account=3/3600")
    await register(gateway.client(), "popular@example.com")
    botnet = [gateway.client(f"203.0.114.{i}") for i in range(4)]
    for bot in botnet:
        assert (await attempt(bot, "popular@example.com", "guess-one")).status_code == 401
    assert_rate_limited(await attempt(botnet[0], "popular@example.com", "guess-two"))
    owner = gateway.client("198.51.100.2")
    assert (await attempt(owner, "popular@example.com", PASSWORD)).status_code == 200
