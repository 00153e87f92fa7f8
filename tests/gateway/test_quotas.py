"""Per-user write limits (tickets, comments, token creation) and the cap on live API tokens:
past them a user gets 429 with Retry-After; other users are not held back."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from libs.events.settings import Settings
from services.gateway.people.ratelimit import Limit, RateLimits
from tests.gateway.helpers import (
    Team,
    join,
    login,
    register,
    running_desk,
    running_gateway,
    signed_in_client,
    team_on_desk,
)

TIGHT = RateLimits(
    tickets_per_user=Limit("tickets-user", 3, 3600),
    comments_per_user=Limit("comments-user", 2, 3600),
    tokens_per_user=Limit("tokens-user", 3, 3600),
)
INCIDENT = {"type": "incident", "title": "Queue stuck", "fields": {"service": "queue"}}


def assert_limited(response: httpx.Response, code: str = "RATE_LIMITED") -> None:
    assert response.status_code == 429, response.text
    assert response.json()["error"]["code"] == code
    retry_after = int(response.headers["retry-after"])
    assert retry_after >= 1 and response.json()["error"]["details"]["retry_after"] == retry_after


@pytest.fixture
async def team(server_urls: tuple[str, str], tmp_path: Path) -> AsyncIterator[Team]:
    async with team_on_desk(server_urls, tmp_path, rate_limits=TIGHT) as made:
        yield made


async def test_tickets_past_the_per_user_limit_get_429_and_others_still_write(team: Team) -> None:
    alice, bob = team.client(team.alice), team.client(team.bob)
    for _ in range(3):
        assert (await alice.post("/api/v1/tickets", json=INCIDENT)).status_code == 201
    assert_limited(await alice.post("/api/v1/tickets", json=INCIDENT))
    assert (await bob.post("/api/v1/tickets", json=INCIDENT)).status_code == 201


async def test_comments_past_the_per_user_limit_get_429(team: Team) -> None:
    key = (await team.open_ticket())["key"]
    alice = team.client(team.alice)
    url = f"/api/v1/tickets/{key}/comments"
    for n in range(2):
        assert (await alice.post(url, json={"body": f"any news? {n}"})).status_code == 201
    assert_limited(await alice.post(url, json={"body": "hello?"}))
    operator = team.client(team.operator)
    assert (await operator.post(url, json={"body": "on it"})).status_code == 201


async def test_token_creation_past_the_per_user_limit_gets_429(team: Team) -> None:
    alice = team.client(team.alice)
    body = {"name": "ci", "scopes": ["api"]}
    for _ in range(3):
        assert (await alice.post("/api/v1/tokens", json=body)).status_code == 201
    assert_limited(await alice.post("/api/v1/tokens", json=body))


async def test_live_tokens_are_capped_per_user_until_one_is_revoked(
    settings: Settings, database_url: str, nats_url: str
) -> None:
    few = settings.model_copy(update={"live_tokens_per_user": 2})
    async with running_gateway(few, database_url, nats_url) as gateway:
        client = gateway.client()
        await register(client, "cap@example.com")
        await login(client, "cap@example.com")
        body = {"name": "ci", "scopes": ["api"]}
        made = [await client.post("/api/v1/tokens", json=body) for _ in range(2)]
        assert [m.status_code for m in made] == [201, 201]
        assert_limited(await client.post("/api/v1/tokens", json=body), code="TOO_MANY_TOKENS")
        revoked = await client.delete(f"/api/v1/tokens/{made[0].json()['id']}")
        assert revoked.status_code == 204
        assert (await client.post("/api/v1/tokens", json=body)).status_code == 201


async def test_the_per_user_limit_holds_across_two_gateway_replicas(
    settings: Settings, database_url: str, nats_url: str
) -> None:
    async with (
        running_desk(settings, database_url, nats_url, replica="a") as first,
        running_desk(settings, database_url, nats_url, replica="b") as second,
    ):
        first.app.state.rate_limits = second.app.state.rate_limits = TIGHT
        admin = await join(first, "admin@example.com", role="admin", admin=None)
        via = [signed_in_client(first, admin), signed_in_client(second, admin)]

        opened = [await via[n % 2].post("/api/v1/tickets", json=INCIDENT) for n in range(3)]
        assert [o.status_code for o in opened] == [201] * 3, [o.text for o in opened]
        assert_limited(await via[1].post("/api/v1/tickets", json=INCIDENT))
        assert_limited(await via[0].post("/api/v1/tickets", json=INCIDENT))
