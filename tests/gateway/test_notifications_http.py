"""In-app notifications over HTTP and the live stream, on a real HTTP server with the people,
tickets and executor services running: a `notify` job's notification reaches its own user's
`/api/v1/stream` and nobody else's (admins included), `/api/v1/notifications` lists only one's
own, reading someone else's is 404, and bad input is a clear 4xx."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from libs.events.devstack import serve_http
from libs.events.embedded import free_port
from libs.events.runtime import Deps
from libs.events.settings import Settings
from libs.events.testing import eventually, isolated_system
from services.executor.app import SERVICE as EXECUTOR
from services.gateway.app import SERVICE as GATEWAY
from services.gateway.app import create_app
from services.people.app import SERVICE as PEOPLE
from services.tickets.app import SERVICE as TICKETS
from tests.executor.notices import people_known, queue_on
from tests.gateway.helpers import PASSWORD


@dataclass
class Site:
    base: str
    deps: Deps

    async def user(self, email: str) -> tuple[httpx.AsyncClient, str]:
        """A new user (the first one becomes the admin), signed in."""
        made = httpx.AsyncClient(base_url=self.base, timeout=10)
        registered = await made.post(
            "/api/v1/auth/register", json={"email": email, "name": email, "password": PASSWORD}
        )
        assert registered.status_code == 201, registered.text
        login = await made.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
        assert login.status_code == 200, login.text
        return made, str(registered.json()["id"])


@pytest.fixture
async def site(settings: Settings, database_url: str, nats_url: str) -> AsyncIterator[Site]:
    services = [PEOPLE, GATEWAY, TICKETS, EXECUTOR]
    async with isolated_system(settings, database_url, nats_url, services=services) as deps:
        port = free_port()
        server, serving = await serve_http(create_app(deps), host="127.0.0.1", port=port)
        try:
            yield Site(base=f"http://127.0.0.1:{port}", deps=deps)
        finally:
            server.should_exit = True
            server.force_exit = True  # open SSE connections would otherwise hold shutdown
            await serving


class Listener:
    """Reads one user's SSE stream in the background into a list of (id, type, data)."""

    def __init__(self, client: httpx.AsyncClient, headers: dict[str, str] | None = None) -> None:
        self.client = client
        self.headers = headers or {}
        self.events: list[tuple[int, str, dict[str, Any]]] = []
        self._task: asyncio.Task[None] | None = None
        self._open = asyncio.Event()

    async def __aenter__(self) -> Listener:
        self._task = asyncio.create_task(self._read())
        await asyncio.wait_for(self._open.wait(), 5)
        await asyncio.sleep(0.1)  # the server subscribes before it sends the first byte
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def _read(self) -> None:
        async with self.client.stream("GET", "/api/v1/stream", headers=self.headers) as response:
            assert response.status_code == 200
            self._open.set()
            frame: dict[str, str] = {}
            async for line in response.aiter_lines():
                if not line:
                    if "data" in frame and "event" in frame:
                        self.events.append(
                            (int(frame["id"]), frame["event"], json.loads(frame["data"]))
                        )
                    frame = {}
                elif ":" in line and not line.startswith(":"):
                    name, _, value = line.partition(":")
                    frame[name] = value.strip()

    @property
    def notifications(self) -> list[tuple[str, str]]:
        """(type, user_id) of each notification event received."""
        return [(t, d["data"]["user_id"]) for _, t, d in self.events if t.startswith("notif")]

    async def until(self, count: int) -> None:
        await eventually(
            lambda: asyncio.sleep(0, len(self.notifications)), until=lambda n: n >= count
        )


async def notify(site: Site, user_id: str, message: str, *, ticket: str = "OPS-1") -> None:
    action = {"type": "notify", "params": {"to": f"user:{user_id}", "message": message}}
    await queue_on(site.deps, [action], ticket=ticket)


async def listed(client: httpx.AsyncClient, **params: Any) -> dict[str, Any]:
    answer = await client.get("/api/v1/notifications", params=params)
    assert answer.status_code == 200, answer.text
    page: dict[str, Any] = answer.json()
    return page


async def test_a_notification_is_pushed_to_its_own_user_only(site: Site) -> None:
    admin, _ = await site.user("admin@example.com")
    alice, alice_id = await site.user("alice@example.com")
    bob, _ = await site.user("bob@example.com")
    await people_known(site.deps, 3)
    async with (
        Listener(alice) as alice_sees,
        Listener(bob) as bob_sees,
        Listener(admin) as admin_sees,
    ):
        await notify(site, alice_id, "your deploy is done")
        await alice_sees.until(1)
        [item] = (await listed(alice))["items"]
        read = await alice.post(f"/api/v1/notifications/{item['id']}/read")
        assert read.status_code == 200 and read.json()["read"] is True, read.text
        await alice_sees.until(2)
        await asyncio.sleep(0.3)  # anything Bob or the admin must not see would be here by now
    assert alice_sees.notifications == [
        ("notification.created", alice_id),
        ("notification.read", alice_id),
    ]
    created = next(d for _, t, d in alice_sees.events if t == "notification.created")
    assert created["data"]["message"] == "your deploy is done"
    assert bob_sees.notifications == [] and admin_sees.notifications == []

    # catching up after Last-Event-ID replays the same: Alice's to her, nothing to the others
    before = str(alice_sees.events[0][0] - 1)
    async with (
        Listener(alice, {"Last-Event-ID": before}) as again,
        Listener(admin, {"Last-Event-ID": before}) as admin_again,
    ):
        await again.until(2)
        await asyncio.sleep(0.3)
    assert again.notifications == alice_sees.notifications
    assert admin_again.notifications == []


async def test_the_list_is_ones_own_and_someone_elses_is_not_found(site: Site) -> None:
    admin, _ = await site.user("admin@example.com")
    alice, alice_id = await site.user("alice@example.com")
    bob, _ = await site.user("bob@example.com")
    await people_known(site.deps, 3)
    for i in range(3):
        await notify(site, alice_id, f"note {i}", ticket=f"OPS-{i + 1}")
    every = await eventually(
        lambda: listed(alice), until=lambda p: len(p["items"]) == 3, timeout=20
    )
    # the jobs ran side by side, so in no known order (tests/executor pins newest first)
    items = every["items"]
    assert sorted(i["message"] for i in items) == ["note 0", "note 1", "note 2"]

    first = await listed(alice, limit=2)
    rest = await listed(alice, limit=2, cursor=first["next_cursor"])
    assert first["items"] + rest["items"] == items and rest["next_cursor"] is None
    newest = items[0]["id"]

    for other in (bob, admin):
        assert (await listed(other))["items"] == []
        refused = await other.post(f"/api/v1/notifications/{newest}/read")
        assert refused.status_code == 404, refused.text
        assert refused.json()["error"]["code"] == "NOT_FOUND"
    assert (await alice.post(f"/api/v1/notifications/{newest}/read")).status_code == 200
    unread = await listed(alice, unread="true")
    assert unread["items"] == items[1:]


@pytest.mark.parametrize(
    ("method", "path", "params"),
    [
        ("POST", "/api/v1/notifications/not-an-id/read", None),
        ("POST", f"/api/v1/notifications/{'A' * 32}/read", None),
        ("GET", "/api/v1/notifications", {"cursor": "bm9wZQ=="}),
        ("GET", "/api/v1/notifications", {"unread": "perhaps"}),
        ("GET", "/api/v1/notifications", {"limit": "0"}),
        ("GET", "/api/v1/notifications", {"limit": "201"}),
    ],
)
async def test_bad_input_is_a_clear_422(
    site: Site, method: str, path: str, params: dict[str, str] | None
) -> None:
    client, _ = await site.user("admin@example.com")
    answer = await client.request(method, path, params=params)
    assert answer.status_code == 422, answer.text
    assert set(answer.json()) == {"error"} and {"code", "message"} <= set(answer.json()["error"])


async def test_notifications_need_a_signed_in_user(site: Site) -> None:
    async with httpx.AsyncClient(base_url=site.base) as anonymous:
        answer = await anonymous.get("/api/v1/notifications")
    assert answer.status_code == 401 and answer.json()["error"]["code"] == "UNAUTHENTICATED"
