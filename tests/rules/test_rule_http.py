"""The rule routes through the gateway, with the rules service behind it on real Postgres and
NATS: create, PATCH as a new version, DELETE as archive, versions, diff, dry run; and a rule's
shape errors as one 422 INVALID_RULE naming each path."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from libs.events.settings import Settings
from libs.events.testing import eventually
from services.gateway.app import SERVICE as GATEWAY
from services.people.app import SERVICE as PEOPLE
from services.rules.app import SERVICE as RULES
from services.tickets.app import SERVICE as TICKETS
from tests.gateway.helpers import Gateway, Member, join, running_gateway, signed_in_client
from tests.rules.service_support import definition


@pytest.fixture
async def desk(settings: Settings, database_url: str, nats_url: str) -> AsyncIterator[Gateway]:
    services = (PEOPLE, GATEWAY, RULES)
    async with running_gateway(settings, database_url, nats_url, services=services) as gateway:
        yield gateway


@pytest.fixture
async def first_admin(desk: Gateway) -> Member:
    return await join(desk, "admin@example.com", role="admin", admin=None)


@pytest.fixture
def admin(desk: Gateway, first_admin: Member) -> httpx.AsyncClient:
    return signed_in_client(desk, first_admin)


async def test_a_rule_is_created_patched_and_archived_over_http(
    desk: Gateway, admin: httpx.AsyncClient
) -> None:
    made = await admin.post("/api/v1/rules", json=definition())
    assert made.status_code == 201, made.text
    rule = made.json()
    assert {"id", "version", "created_at", "updated_at"} <= set(rule) and rule["version"] == 1
    patched = await admin.patch(f"/api/v1/rules/{rule['id']}", json={"name": "Renamed"})
    assert patched.status_code == 200 and patched.json()["version"] == 2
    versions = (await admin.get(f"/api/v1/rules/{rule['id']}/versions")).json()
    assert [v["version"] for v in versions["items"]] == [1, 2]
    since = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    diff = await admin.get(
        f"/api/v1/rules/{rule['id']}/diff", params={"a": 1, "b": 2, "since": since}
    )
    assert diff.status_code == 200 and diff.json()["evaluated"] == 0
    listed = (await admin.get("/api/v1/rules")).json()
    assert [r["id"] for r in listed["items"]] == [rule["id"]]
    gone = await admin.delete(f"/api/v1/rules/{rule['id']}")
    assert gone.status_code == 200 and gone.json()["enabled"] is False
    assert (await admin.get(f"/api/v1/rules/{rule['id']}")).status_code == 404


async def test_shape_errors_are_invalid_rule_with_every_path(admin: httpx.AsyncClient) -> None:
    bad = definition(name="", trigger={"event": "nope"}, actions=[{"type": "add_tag"}])
    answer = await admin.post("/api/v1/rules", json=bad)
    assert answer.status_code == 422, answer.text
    error = answer.json()["error"]
    assert error["code"] == "INVALID_RULE"
    assert {"name", "trigger.event", "actions[0].params.tag"} <= {
        d["path"] for d in error["details"]
    }
    not_an_object = await admin.post("/api/v1/rules", json=["a", "list"])
    assert not_an_object.status_code == 422
    assert not_an_object.json()["error"]["code"] == "INVALID_RULE"


async def test_a_dry_run_over_http_leaves_the_log_unchanged(
    desk: Gateway, admin: httpx.AsyncClient
) -> None:
    count = "SELECT count(*), coalesce(max(position), 0) FROM eventstore.events"
    before = await desk.deps.pool.fetchrow(count)
    since = (datetime.now(UTC) - timedelta(days=7)).isoformat()
    answer = await admin.post("/api/v1/rules/dry-run", json={"rule": definition(), "since": since})
    assert answer.status_code == 200, answer.text
    assert set(answer.json()) >= {"evaluated", "matches"}
    assert await desk.deps.pool.fetchrow(count) == before
    naive = await admin.post(
        "/api/v1/rules/dry-run", json={"rule": definition(), "since": "2026-01-01T00:00:00"}
    )
    assert naive.status_code == 422


async def test_operators_read_rules_and_may_not_write_them(
    desk: Gateway, first_admin: Member
) -> None:
    operator = await join(desk, "oper@example.com", role="operator", admin=first_admin)
    client = signed_in_client(desk, operator)
    assert (await client.get("/api/v1/rules")).status_code == 200
    refused = await client.post("/api/v1/rules", json=definition())
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "FORBIDDEN"


async def test_a_ticket_opened_over_http_fires_an_enabled_rule(
    settings: Settings, database_url: str, nats_url: str
) -> None:
    """End to end with the tickets service: the rules service's own ticket projection, fed by
    the tickets service's events, is what the conditions see."""
    services = (PEOPLE, GATEWAY, TICKETS, RULES)
    async with running_gateway(settings, database_url, nats_url, services=services) as desk:
        admin = signed_in_client(desk, await join(desk, "a@example.com", role="admin", admin=None))
        made = await admin.post("/api/v1/rules", json=definition())
        assert made.status_code == 201, made.text

        async def open_ticket() -> httpx.Response:
            body = {"type": "incident", "title": "API down", "fields": {"service": "api"}}
            return await admin.post("/api/v1/tickets", json=body)

        # the tickets service learns of the admin from the log: retry until it has
        opened = await eventually(open_ticket, until=lambda r: r.status_code == 201)
        key = opened.json()["key"]

        async def queued() -> list[Any]:
            return list(
                await desk.deps.pool.fetch(
                    "SELECT data FROM eventstore.events WHERE type = 'job.queued'"
                )
            )

        [job] = await eventually(queued, until=lambda jobs: len(jobs) == 1)
        assert job["data"]["ticket"] == key and job["data"]["rule_id"] == made.json()["id"]
        assert job["data"]["context"]["ticket"]["title"] == "API down"
