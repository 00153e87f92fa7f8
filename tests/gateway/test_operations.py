"""Operational routes: liveness, readiness, metrics, OpenAPI, and the global event log."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from libs.events.envelope import Actor, Metadata
from libs.events.store import NO_STREAM
from libs.events.testing import eventually
from tests.events_for_tests import Counted
from tests.gateway.helpers import Gateway, SignedIn

META = Metadata(actor=Actor.system(), service="test")


async def test_health_and_readiness_answer_when_postgres_and_nats_are_up(
    client: httpx.AsyncClient,
) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"postgres": "ok", "nats": "ok"}


async def test_readiness_is_503_when_postgres_is_unreachable(
    gateway: Gateway, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    class UnreachablePool:
        async def fetchval(self, *_: Any, **__: Any) -> None:
            raise ConnectionRefusedError("postgres is down")

    monkeypatch.setattr(gateway.deps, "pool", UnreachablePool())
    ready = await client.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["error"]["code"] == "NOT_READY"
    assert ready.json()["error"]["details"]["postgres"].startswith("unreachable")


async def test_metrics_are_prometheus_text(client: httpx.AsyncClient) -> None:
    metrics = await client.get("/metrics")
    assert metrics.status_code == 200
    assert "opsledger_events_handled_total" in metrics.text


async def test_openapi_document_lists_the_contract_routes(client: httpx.AsyncClient) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]
    for route in ("/api/v1/events", "/api/v1/auth/login", "/healthz", "/readyz"):
        assert route in paths


async def test_unknown_route_is_a_404_in_the_error_shape(client: httpx.AsyncClient) -> None:
    missing = await client.get("/api/v1/no-such-thing")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "NOT_FOUND"


async def test_admin_reads_the_global_log_in_order_with_filters_and_cursor(
    gateway: Gateway, signed_in: SignedIn
) -> None:
    admin, _ = await signed_in("admin@example.com")
    store = gateway.deps.store
    first = await store.append("c-1", [Counted(n=1)], expected_version=NO_STREAM, metadata=META)
    await store.append("c-2", [Counted(n=2)], expected_version=NO_STREAM, metadata=META)
    await store.append("c-1", [Counted(n=3)], expected_version=1, metadata=META)

    async def counted() -> dict[str, Any]:
        found: dict[str, Any] = (
            await admin.get("/api/v1/events", params={"type": "test.counted"})
        ).json()
        return found

    # the log shows an event once every older transaction in the cluster has ended
    page = await eventually(counted, until=lambda p: len(p["items"]) == 3)
    assert [(e["stream_id"], e["data"]["n"]) for e in page["items"]] == [
        ("c-1", 1),
        ("c-2", 2),
        ("c-1", 3),
    ]
    one = (await admin.get("/api/v1/events", params={"stream": "c-1"})).json()
    assert [e["data"]["n"] for e in one["items"]] == [1, 3]
    after = (await admin.get("/api/v1/events", params={"after": first[0].position})).json()
    assert [e["data"]["n"] for e in after["items"] if e["type"] == "test.counted"] == [2, 3]

    paged = (await admin.get("/api/v1/events", params={"type": "test.counted", "limit": 2})).json()
    assert len(paged["items"]) == 2 and paged["next_cursor"] is not None
    rest = await admin.get(
        "/api/v1/events", params={"type": "test.counted", "cursor": paged["next_cursor"]}
    )
    assert [e["data"]["n"] for e in rest.json()["items"]] == [3]


async def test_the_global_log_is_for_admins_only(
    client: httpx.AsyncClient, signed_in: SignedIn
) -> None:
    await signed_in("admin@example.com")
    requester, _ = await signed_in("req@example.com")
    assert (await client.get("/api/v1/events")).status_code == 401
    assert (await requester.get("/api/v1/events")).status_code == 403


async def test_a_cursor_that_names_no_event_is_a_400(signed_in: SignedIn) -> None:
    admin, _ = await signed_in("admin@example.com")
    bad = await admin.get("/api/v1/events", params={"after": 999_999})
    assert bad.status_code == 400
    assert bad.json()["error"]["code"] == "INVALID_CURSOR"
    assert (await admin.get("/api/v1/events", params={"cursor": "abc"})).status_code == 400
