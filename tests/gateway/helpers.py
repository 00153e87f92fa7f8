"""Gateway test helpers: a running gateway (System + FastAPI app) and sign-up/sign-in calls."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx
from fastapi import FastAPI

from libs.events.consumers import list_parked
from libs.events.runtime import Deps
from libs.events.settings import Settings
from libs.events.system import System
from libs.events.testing import eventually
from services.gateway.app import SERVICE, create_app
from services.gateway.people.projection import PEOPLE_PROJECTION

PASSWORD = "correct horse battery staple"


@dataclass
class Gateway:
    """One running gateway: its deps, its app, and the clients made on it (closed with it)."""

    deps: Deps
    app: FastAPI
    _clients: list[httpx.AsyncClient] = field(default_factory=list)

    def client(self, ip: str = "127.0.0.1", *, https: bool = False) -> httpx.AsyncClient:
        """A client with its own cookie jar, calling from `ip`."""
        transport = httpx.ASGITransport(app=self.app, client=(ip, 40000))
        base_url = "https://test" if https else "http://test"
        made = httpx.AsyncClient(transport=transport, base_url=base_url)
        self._clients.append(made)
        return made

    async def close(self) -> None:
        for made in self._clients:
            await made.aclose()


@contextlib.asynccontextmanager
async def running_gateway(
    settings: Settings, database_url: str, nats_url: str, *, replica: str = "r1"
) -> AsyncIterator[Gateway]:
    """The gateway service in its own System (as `opsledger run gateway` would start it)."""
    own = settings.model_copy(
        update={"database_url": database_url, "data_dir": settings.data_dir / replica}
    )
    system = System(
        settings=own,
        database_url=database_url,
        nats_url=nats_url,
        services=[SERVICE],
        timers=False,
        name=f"gateway-{replica}",
    )
    async with system as deps:
        gateway = Gateway(deps=deps, app=create_app(deps))
        try:
            yield gateway
            await settle(deps)
        finally:
            await gateway.close()


async def settle(deps: Deps) -> None:
    """Wait until every stored event is on the bus and the live people projection has acked it,
    then check it parked nothing: the live path must agree with the inline one."""

    async def idle() -> bool:
        stored = await deps.pool.fetchval("SELECT count(*) FROM eventstore.events")
        stream = await deps.js.stream_info(deps.settings.stream_name)
        info = await deps.js.consumer_info(deps.settings.stream_name, PEOPLE_PROJECTION.name)
        return bool(
            stream.state.messages >= stored and not info.num_pending and not info.num_ack_pending
        )

    await eventually(idle, timeout=20)
    parked = await list_parked(deps.pool, consumer=PEOPLE_PROJECTION.name)
    assert parked == [], "the live people projection failed on an event"


async def register(
    client: httpx.AsyncClient, email: str, *, name: str = "Someone", password: str = PASSWORD
) -> dict[str, Any]:
    response = await client.post(
        "/api/v1/auth/register", json={"email": email, "name": name, "password": password}
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def login(
    client: httpx.AsyncClient, email: str, *, password: str = PASSWORD
) -> httpx.Response:
    response = await client.post("/api/v1/auth/login", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    return response


class SignedIn(Protocol):
    """`await signed_in(email)`: register (the first ever is admin), sign in; (client, user)."""

    async def __call__(
        self, email: str, *, ip: str = "127.0.0.1"
    ) -> tuple[httpx.AsyncClient, dict[str, Any]]: ...
