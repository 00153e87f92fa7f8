"""A gateway served by uvicorn on a free port (what a browser or a proxy talks to: uvicorn's own
header handling included), and a reader of its live stream that notices when the server ends it."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
from fastapi import FastAPI

from libs.events.devstack import serve_http
from libs.events.embedded import free_port
from libs.events.runtime import Deps, Service
from libs.events.settings import Settings
from libs.events.testing import isolated_system
from services.gateway.app import SERVICE as GATEWAY
from services.gateway.app import create_app
from services.people.app import SERVICE as PEOPLE
from services.tickets.app import SERVICE as TICKETS
from tests.gateway.helpers import PASSWORD


@dataclass(frozen=True)
class Served:
    deps: Deps
    app: FastAPI
    base: str
    """The base URL: http://127.0.0.1:<port>."""


@contextlib.asynccontextmanager
async def served_gateway(
    settings: Settings,
    database_url: str,
    nats_url: str,
    *,
    services: Sequence[Service] = (PEOPLE, GATEWAY, TICKETS),
    replica: str = "r1",
) -> AsyncIterator[Served]:
    """A gateway (with people and tickets behind it) served over real HTTP."""
    system = isolated_system(settings, database_url, nats_url, services=services, replica=replica)
    async with system as deps:
        port = free_port()
        app = create_app(deps)
        server, serving = await serve_http(app, host="127.0.0.1", port=port)
        try:
            yield Served(deps=deps, app=app, base=f"http://127.0.0.1:{port}")
        finally:
            server.should_exit = True
            server.force_exit = True  # open SSE connections would otherwise hold shutdown
            await serving


async def signed_up(
    base: str, email: str, *, role: str | None = None, admin: httpx.AsyncClient | None = None
) -> tuple[httpx.AsyncClient, str]:
    """A client signed in as a new user (given `role` by `admin`), and the user's id."""
    made = httpx.AsyncClient(base_url=base, timeout=10)
    registered = await made.post(
        "/api/v1/auth/register", json={"email": email, "name": email, "password": PASSWORD}
    )
    assert registered.status_code == 201, registered.text
    user_id: str = registered.json()["id"]
    if role is not None and admin is not None:
        changed = await admin.patch(f"/api/v1/users/{user_id}", json={"role": role})
        assert changed.status_code == 200, changed.text
    login = await made.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
    assert login.status_code == 200, login.text
    return made, user_id


class StreamReader:
    """Reads GET /api/v1/stream in the background: its status, the events (type, data) it sent,
    and whether the server has ended it."""

    def __init__(self, client: httpx.AsyncClient, headers: dict[str, str] | None = None) -> None:
        self.client = client
        self.headers = headers or {}
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.status: int | None = None
        self.response_headers: httpx.Headers | None = None
        self.body: Any = None
        self.ended = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._open = asyncio.Event()

    async def __aenter__(self) -> StreamReader:
        self._task = asyncio.create_task(self._read())
        await asyncio.wait_for(self._open.wait(), 10)
        await asyncio.sleep(0.2)  # the server subscribes before it sends the first byte
        return self

    async def __aexit__(self, *_: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _read(self) -> None:
        try:
            async with self.client.stream(
                "GET", "/api/v1/stream", headers=self.headers, timeout=None
            ) as response:
                self.status = response.status_code
                self.response_headers = response.headers
                if response.status_code != 200:
                    self.body = json.loads(await response.aread())
                    self._open.set()
                    return
                self._open.set()
                frame: dict[str, str] = {}
                async for line in response.aiter_lines():
                    if not line:
                        if "data" in frame and "event" in frame:
                            self.events.append((frame["event"], json.loads(frame["data"])))
                        frame = {}
                    elif ":" in line and not line.startswith(":"):
                        name, _, value = line.partition(":")
                        frame[name] = value.strip()
        finally:
            self._open.set()
            self.ended.set()

    def of(self, key: str) -> list[tuple[str, dict[str, Any]]]:
        """The (type, data) of the events of ticket `key` it sent."""
        return [(t, data) for t, data in self.events if data["stream_id"] == f"ticket-{key}"]

    async def wait_until_ended(self, timeout: float = 10) -> None:
        await asyncio.wait_for(self.ended.wait(), timeout)


async def open_ticket(client: httpx.AsyncClient, title: str) -> str:
    made = await client.post(
        "/api/v1/tickets", json={"type": "incident", "title": title, "fields": {"service": "db"}}
    )
    assert made.status_code == 201, made.text
    key: str = made.json()["key"]
    return key
