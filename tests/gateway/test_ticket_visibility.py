"""Every read path of a ticket gives every caller the same answer: get, as_of, list, comments,
the audit trail and the live stream, for the ticket's requester, another requester, an operator,
an admin and automation (internal comments hidden from requesters everywhere)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from libs.events.devstack import serve_http
from libs.events.embedded import free_port
from libs.events.envelope import Actor
from libs.events.errors import ServiceError
from libs.events.runtime import Deps
from libs.events.settings import Settings
from libs.events.testing import isolated_system
from services.gateway import stream
from services.gateway.app import SERVICE as GATEWAY
from services.gateway.app import create_app
from services.people.app import SERVICE as PEOPLE
from services.tickets.app import SERVICE as TICKETS
from services.tickets.commands import Caller
from tests.gateway.helpers import PASSWORD

Seen = list[tuple[str, str | None]]
"""What a caller sees of a ticket's events: (type, comment body or None)."""


@dataclass
class Served:
    base: str
    deps: Deps


@pytest.fixture
async def served(settings: Settings, database_url: str, nats_url: str) -> AsyncIterator[Served]:
    system = isolated_system(settings, database_url, nats_url, services=[PEOPLE, GATEWAY, TICKETS])
    async with system as deps:
        port = free_port()
        server, serving = await serve_http(create_app(deps), host="127.0.0.1", port=port)
        try:
            yield Served(base=f"http://127.0.0.1:{port}", deps=deps)
        finally:
            server.should_exit = True
            server.force_exit = True  # open SSE connections would otherwise hold shutdown
            await serving


async def member(
    served: Served, email: str, role: str | None = None, admin: httpx.AsyncClient | None = None
) -> httpx.AsyncClient:
    client = httpx.AsyncClient(base_url=served.base, timeout=10)
    made = await client.post(
        "/api/v1/auth/register", json={"email": email, "name": email, "password": PASSWORD}
    )
    assert made.status_code == 201, made.text
    if role is not None and admin is not None:
        changed = await admin.patch(f"/api/v1/users/{made.json()['id']}", json={"role": role})
        assert changed.status_code == 200, changed.text
    login = await client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
    assert login.status_code == 200, login.text
    return client


@dataclass
class Listener:
    """One user's SSE stream, read in the background: (stream id, type, data) per frame."""

    client: httpx.AsyncClient
    frames: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    _task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        opened = asyncio.Event()

        async def read() -> None:
            async with self.client.stream("GET", "/api/v1/stream") as response:
                opened.set()
                frame: dict[str, str] = {}
                async for line in response.aiter_lines():
                    if not line:
                        if "data" in frame:
                            data = json.loads(frame["data"])
                            self.frames.append((data["stream_id"], data["type"], data["data"]))
                        frame = {}
                    elif ":" in line and not line.startswith(":"):
                        name, _, value = line.partition(":")
                        frame[name] = value.strip()

        self._task = asyncio.create_task(read())
        await asyncio.wait_for(opened.wait(), 5)
        await asyncio.sleep(0.1)  # the server subscribes before it sends the first byte

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def seen(self, key: str) -> Seen:
        return [(t, d.get("body")) for s, t, d in self.frames if s == f"ticket-{key}"]


def _events(items: list[dict[str, Any]]) -> Seen:
    return [(e["type"], e["data"].get("body")) for e in items]


async def over_http(client: httpx.AsyncClient, key: str) -> dict[str, Any]:
    """What each HTTP read path shows this caller of the ticket (None: not found)."""
    got = await client.get(f"/api/v1/tickets/{key}")
    then = await client.get(f"/api/v1/tickets/{key}", params={"as_of": "2999-01-01T00:00:00Z"})
    listed = (await client.get("/api/v1/tickets")).json()["items"]
    comments = await client.get(f"/api/v1/tickets/{key}/comments")
    trail = await client.get(f"/api/v1/tickets/{key}/events")
    for answer in (got, then, comments, trail):
        assert answer.status_code in (200, 404), answer.text
    return {
        "get": got.status_code == 200,
        "as_of": then.status_code == 200,
        "list": key in [t["key"] for t in listed],
        "comments": [c["body"] for c in comments.json()["items"]] if comments.is_success else None,
        "audit": _events(trail.json()["items"]) if trail.is_success else None,
    }


async def over_rpc(deps: Deps, key: str) -> dict[str, Any]:
    """The same read paths for automation (a service calling with no role), and the stream's
    decision for it over the ticket's stored events."""
    bot = Actor.service("rules")

    async def call(method: str, body: dict[str, Any]) -> Any:
        try:
            return await deps.rpc.call("tickets", method, body, actor=bot)
        except ServiceError as exc:
            assert exc.status == 404
            return None

    as_of = "2999-01-01T00:00:00Z"
    comments = await call("tickets.comments", {"key": key})
    trail = await call("tickets.events", {"key": key})
    automation = Caller(user_id=bot.id, role=None, automation=True)
    stored = await deps.store.read_stream(f"ticket-{key}")
    return {
        "get": await call("tickets.get", {"key": key}) is not None,
        "as_of": await call("tickets.get", {"key": key, "as_of": as_of}) is not None,
        "list": key in [t["key"] for t in (await call("tickets.list", {}))["items"]],
        "comments": None if comments is None else [c["body"] for c in comments["items"]],
        "audit": None if trail is None else _events(trail["items"]),
        "stream": [
            (e.type, e.data.get("body"))
            for e in stored
            if await stream.may_see(stream.Requesters(deps), automation, e)
        ],
    }


STAFF_SEE: Seen = [
    ("ticket.created", None),
    ("ticket.commented", "on it"),
    ("ticket.commented", "root cause: bad deploy"),
]
EXPECTED: dict[str, Seen] = {
    "requester (owner)": STAFF_SEE[:2],
    "other requester": [],
    "operator": STAFF_SEE,
    "admin": STAFF_SEE,
    "automation": STAFF_SEE,
}


async def test_every_read_path_shows_each_caller_the_same_things(served: Served) -> None:
    admin = await member(served, "admin@example.com")
    operator = await member(served, "op@example.com", "operator", admin)
    alice = await member(served, "alice@example.com")
    bob = await member(served, "bob@example.com")
    people = {"requester (owner)": alice, "other requester": bob, "operator": operator}
    people["admin"] = admin
    listeners = {who: Listener(client) for who, client in people.items()}
    for listener in listeners.values():
        await listener.start()
    try:
        made = await alice.post(
            "/api/v1/tickets",
            json={"type": "incident", "title": "down", "fields": {"service": "db"}},
        )
        assert made.status_code == 201, made.text
        key = made.json()["key"]
        for body, internal in (("on it", False), ("root cause: bad deploy", True)):
            said = await operator.post(
                f"/api/v1/tickets/{key}/comments", json={"body": body, "internal": internal}
            )
            assert said.status_code == 201, said.text
        for _ in range(250):
            if len(listeners["admin"].seen(key)) >= 3 and len(listeners["operator"].seen(key)) >= 3:
                break
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.3)  # anything a requester must not see would have arrived by now
        views = {who: await over_http(client, key) for who, client in people.items()}
        for who, listener in listeners.items():
            views[who]["stream"] = listener.seen(key)
        views["automation"] = await over_rpc(served.deps, key)
    finally:
        for listener in listeners.values():
            await listener.stop()
        for client in (admin, operator, alice, bob):
            await client.aclose()

    for who, view in views.items():
        expected = EXPECTED[who]
        sees = bool(expected)
        assert (view["get"], view["as_of"], view["list"]) == (sees, sees, sees), who
        assert view["audit"] == (expected if sees else None), who
        assert view["stream"] == expected, who
        bodies = [body for kind, body in expected if kind == "ticket.commented"]
        assert view["comments"] == (bodies if sees else None), who
