"""GET /api/v1/stream over a real HTTP server: each user sees the ticket events they may see,
live, and catches up after Last-Event-ID."""

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
from libs.events.settings import Settings
from libs.events.testing import isolated_system
from services.gateway.app import SERVICE as GATEWAY
from services.gateway.app import create_app
from services.people.app import SERVICE as PEOPLE
from services.tickets.app import SERVICE as TICKETS
from tests.gateway.helpers import PASSWORD


@dataclass
class Live:
    base: str

    async def user(
        self, email: str, role: str | None = None, admin: httpx.AsyncClient | None = None
    ) -> tuple[httpx.AsyncClient, str]:
        made = httpx.AsyncClient(base_url=self.base, timeout=10)
        registered = await made.post(
            "/api/v1/auth/register", json={"email": email, "name": email, "password": PASSWORD}
        )
        assert registered.status_code == 201, registered.text
        user_id = registered.json()["id"]
        if role is not None and admin is not None:
            changed = await admin.patch(f"/api/v1/users/{user_id}", json={"role": role})
            assert changed.status_code == 200, changed.text
        login = await made.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
        assert login.status_code == 200, login.text
        return made, user_id


@pytest.fixture
async def live(settings: Settings, database_url: str, nats_url: str) -> AsyncIterator[Live]:
    system = isolated_system(settings, database_url, nats_url, services=[PEOPLE, GATEWAY, TICKETS])
    async with system as deps:
        port = free_port()
        server, serving = await serve_http(create_app(deps), host="127.0.0.1", port=port)
        try:
            yield Live(base=f"http://127.0.0.1:{port}")
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
        self.status: int | None = None
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
            self.status = response.status_code
            self._open.set()
            if response.status_code != 200:
                return
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

    def types_for(self, key: str) -> list[str]:
        stream = f"ticket-{key}"
        return [t for _, t, data in self.events if data["stream_id"] == stream]

    async def wait_for(self, count: int) -> None:
        for _ in range(250):
            if len(self.events) >= count:
                return
            await asyncio.sleep(0.02)
        raise AssertionError(f"expected {count} events, got {self.events}")


async def _ticket(client: httpx.AsyncClient, title: str) -> str:
    made = await client.post(
        "/api/v1/tickets",
        json={"type": "incident", "title": title, "fields": {"service": "db"}},
    )
    assert made.status_code == 201, made.text
    key: str = made.json()["key"]
    return key


async def test_each_user_sees_live_only_the_ticket_events_they_may_see(live: Live) -> None:
    admin, _ = await live.user("admin@example.com")
    operator, _ = await live.user("op@example.com", "operator", admin)
    alice, _ = await live.user("alice@example.com")
    bob, _ = await live.user("bob@example.com")

    async with Listener(alice) as alice_sees, Listener(admin) as admin_sees:
        bobs = await _ticket(bob, "bob's")
        alices = await _ticket(alice, "alice's")
        internal = await operator.post(
            f"/api/v1/tickets/{alices}/comments", json={"body": "staff only", "internal": True}
        )
        assert internal.status_code == 201
        public = await operator.post(f"/api/v1/tickets/{alices}/comments", json={"body": "hi"})
        assert public.status_code == 201

        await admin_sees.wait_for(4)
        await alice_sees.wait_for(2)
        await asyncio.sleep(0.3)  # anything Alice must not see would have arrived by now

    assert alice_sees.types_for(alices) == ["ticket.created", "ticket.commented"]
    assert alice_sees.types_for(bobs) == []
    assert [
        data["data"]["body"] for _, t, data in alice_sees.events if t == "ticket.commented"
    ] == ["hi"]
    assert admin_sees.types_for(alices) == [
        "ticket.created",
        "ticket.commented",
        "ticket.commented",
    ]
    assert admin_sees.types_for(bobs) == ["ticket.created"]


async def test_a_reconnecting_client_catches_up_after_its_last_event_id(live: Live) -> None:
    admin, _ = await live.user("admin@example.com")
    async with Listener(admin) as first:
        key = await _ticket(admin, "first")
        await first.wait_for(1)
    last_id = first.events[-1][0]

    await admin.post(f"/api/v1/tickets/{key}/comments", json={"body": "while away"})
    await admin.post(f"/api/v1/tickets/{key}/priority", json={"priority": "high"})

    async with Listener(admin, {"Last-Event-ID": str(last_id)}) as again:
        await again.wait_for(2)
    assert again.types_for(key)[:2] == ["ticket.commented", "ticket.priority_changed"]


async def test_the_stream_needs_a_signed_in_user(live: Live) -> None:
    async with httpx.AsyncClient(base_url=live.base) as anonymous, Listener(anonymous) as refused:
        pass
    assert refused.status == 401
