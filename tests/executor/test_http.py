"""The jobs and webhooks routes through the gateway, over HTTP: staff list, read and retry
jobs; admins register endpoints, which every read shows masked; bad input is a 4xx with the
error shape."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from libs.events.envelope import Actor, Metadata
from libs.events.testing import eventually, isolated_system
from services.executor.app import SERVICE as EXECUTOR
from tests.executor.jobs import firing, queued
from tests.gateway.helpers import Team, team_on_desk

RULES = Metadata(actor=Actor.service("rules"), service="rules")
URL = "https://hooks.slack.com/services/T0/B0/SECRETTOKEN"


@pytest.fixture
async def team(server_urls: tuple[str, str], tmp_path: Path) -> AsyncIterator[Team]:
    async with team_on_desk(server_urls, tmp_path / "data") as made:
        deps = made.gateway.deps
        settings = deps.settings
        async with isolated_system(
            settings, str(settings.database_url), server_urls[1], services=(EXECUTOR,),
            replica="executor",
        ):  # fmt: skip
            yield made


async def test_staff_list_read_and_retry_jobs_over_http(team: Team) -> None:
    key = (await team.open_ticket())["key"]
    events = firing([{"type": "set_status", "params": {"status": "open"}}], ticket=key)
    job_id = queued(events).job_id
    await team.gateway.deps.store.append(
        f"job-{job_id}", events, expected_version=0, metadata=RULES
    )
    operator = team.client(team.operator)

    async def dead() -> list[str]:
        page = await operator.get("/api/v1/jobs", params={"state": "dead_lettered"})
        return [j["id"] for j in page.json()["items"]]

    assert await eventually(dead) == [job_id]
    by_ticket = await operator.get("/api/v1/jobs", params={"ticket": key})
    assert [j["id"] for j in by_ticket.json()["items"]] == [job_id]
    detail = (await operator.get(f"/api/v1/jobs/{job_id}")).json()
    assert detail["last_error"].startswith("INVALID_TRANSITION") and detail["history"]
    retried = await operator.post(f"/api/v1/jobs/{job_id}/retry")
    assert retried.status_code == 200 and retried.json()["state"] == "queued"
    missing = await operator.post(f"/api/v1/jobs/{'0' * 64}/retry")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "NOT_FOUND"
    bad = await operator.get("/api/v1/jobs", params={"state": "exploded"})
    assert bad.status_code == 422 and "error" in bad.json()
    assert (await operator.get("/api/v1/jobs/not-a-job")).status_code == 422


async def test_a_retry_of_a_job_not_dead_lettered_is_a_409(team: Team) -> None:
    key = (await team.open_ticket())["key"]
    events = firing([{"type": "add_tag", "params": {"tag": "x"}}], ticket=key)
    job_id = queued(events).job_id
    await team.gateway.deps.store.append(
        f"job-{job_id}", events, expected_version=0, metadata=RULES
    )
    operator = team.client(team.operator)

    async def state() -> str:
        found = await operator.get(f"/api/v1/jobs/{job_id}")
        return str(found.json().get("state")) if found.status_code == 200 else ""

    await eventually(state, until=lambda s: s == "succeeded")
    refused = await operator.post(f"/api/v1/jobs/{job_id}/retry")
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "NOT_DEAD_LETTERED"


async def test_admins_manage_webhooks_and_never_see_the_secret_or_url_token(team: Team) -> None:
    admin = team.client(team.admin)
    body = {"name": "chat", "kind": "slack", "url": URL, "secret": "hush"}
    made = await admin.post("/api/v1/webhooks", json=body)
    assert made.status_code == 201, made.text
    webhook = made.json()
    path = f"/api/v1/webhooks/{webhook['id']}"
    reads = [
        webhook,
        (await admin.get(path)).json(),
        (await admin.get("/api/v1/webhooks")).json()["items"][0],
        (await admin.patch(path, json={"name": "renamed"})).json(),
    ]
    for shown in reads:
        assert shown["url"] == "https://hooks.slack.com/services/****"
        assert "SECRETTOKEN" not in str(shown) and "hush" not in str(shown)
        assert shown["has_secret"] is True
    cleared = (await admin.patch(path, json={"secret": None})).json()
    assert cleared["has_secret"] is False and cleared["name"] == "renamed"
    events = await admin.get("/api/v1/events", params={"stream": f"webhook-{webhook['id']}"})
    assert "SECRETTOKEN" not in events.text and "hush" not in events.text
    assert (
        await admin.post("/api/v1/webhooks", json={**body, "url": "ftp://x/y"})
    ).status_code == 422
    assert (await admin.delete(path)).status_code == 200
    assert (await admin.get(path)).status_code == 404
