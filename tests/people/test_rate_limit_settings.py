"""OPSLEDGER_RATE_LIMITS: overrides any named limit (a team behind one NAT address raises the
per-address ones); an unknown name or a malformed value stops the process at start, saying
which; the gateway runs with the limits its settings give."""

from __future__ import annotations

import httpx
import pytest
from pydantic import ValidationError

from libs.events.settings import RATE_LIMIT_DEFAULTS, Settings, parse_rate_limits
from services.gateway.people.ratelimit import Limit, RateLimits
from tests.gateway.helpers import running_gateway


def test_the_variable_overrides_the_named_limits_and_keeps_the_others(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OPSLEDGER_RATE_LIMITS", "login-ip=30/60, tickets-user=5/10")
    limits = Settings().rate_limits
    assert limits["login-ip"] == (30, 60)
    assert limits["tickets-user"] == (5, 10)
    assert limits["register-ip"] == RATE_LIMIT_DEFAULTS["register-ip"]
    gateway_limits = RateLimits.from_settings(Settings())
    assert gateway_limits.login_per_ip == Limit("login-ip", 30, 60)
    assert gateway_limits.tickets_per_user == Limit("tickets-user", 5, 10)


def test_every_gateway_limit_is_a_named_limit_of_the_settings() -> None:
    named = {getattr(RateLimits(), f).name for f in RateLimits.__dataclass_fields__}
    assert named == set(RATE_LIMIT_DEFAULTS)


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("login-everything=30/60", "unknown rate limit 'login-everything'"),
        ("login-ip=30", "'login-ip'"),
        ("login-ip=thirty/60", "'login-ip'"),
        ("login-ip=0/60", "'login-ip'"),
        ("login-ip", "'login-ip'"),
    ],
)
def test_an_unknown_name_or_a_malformed_value_is_a_clear_startup_error(
    monkeypatch: pytest.MonkeyPatch, value: str, says: str
) -> None:
    monkeypatch.setenv("OPSLEDGER_RATE_LIMITS", value)
    with pytest.raises(ValidationError) as refused:
        Settings()
    assert says in str(refused.value) and "rate_limits" in str(refused.value)


async def test_the_gateway_applies_the_limits_its_settings_give(
    settings: Settings, database_url: str, nats_url: str
) -> None:
    raised = settings.model_copy(update={"rate_limits": parse_rate_limits("login-ip=2/3600")})
    async with running_gateway(raised, database_url, nats_url) as gateway:
        client = gateway.client("192.0.2.50")
        body = {"email": "nobody@example.com", "password": "wrong-password"}
        answers = [(await client.post("/api/v1/auth/login", json=body)).status_code for _ in "abc"]
        assert answers == [401, 401, 429]
        other: httpx.AsyncClient = gateway.client("192.0.2.51")
        assert (await other.post("/api/v1/auth/login", json=body)).status_code == 401
