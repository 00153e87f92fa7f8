"""Gateway test helpers: a running gateway with the people service behind it (System + FastAPI
app) and sign-up/sign-in calls."""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import httpx
from fastapi import FastAPI
from nats.js.errors import NotFoundError

from libs.events.catalog.tickets import TicketApprovalDecided, TicketApprovalRequested
from libs.events.consumers import list_parked
from libs.events.envelope import Actor, Metadata
from libs.events.runtime import Deps, Service
from libs.events.settings import Settings
from libs.events.store import ANY
from libs.events.testing import (
    delete_namespace_streams,
    eventually,
    isolated_system,
    scratch_database,
    unique_name,
)
from services.gateway.app import SERVICE, create_app
from services.gateway.people.projection import AUTH_PROJECTION
from services.gateway.people.ratelimit import RateLimits
from services.gateway.people.security import SESSION_COOKIE
from services.people.app import SERVICE as PEOPLE
from services.people.projection import PEOPLE_PROJECTION
from services.tickets import queries as tickets_queries
from services.tickets.app import SERVICE as TICKETS

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
    settings: Settings,
    database_url: str,
    nats_url: str,
    *,
    replica: str = "r1",
    services: Sequence[Service] = (PEOPLE, SERVICE),
) -> AsyncIterator[Gateway]:
    """The gateway and the people service it asks in one System (as `opsledger run people` and
    `opsledger run gateway` would start them), or other `services` in the same process."""
    system = isolated_system(settings, database_url, nats_url, services=services, replica=replica)
    async with system as deps:
        gateway = Gateway(deps=deps, app=create_app(deps))
        try:
            yield gateway
            await settle(deps)
        finally:
            await gateway.close()


SETTLED = (PEOPLE_PROJECTION.name, AUTH_PROJECTION.name)
"""The projections of user.* events that also apply inline: the people service's own, and the
gateway's authentication read model."""


async def settle(deps: Deps) -> None:
    """Wait until every stored event is on the bus and the live people projections have acked
    it, then check they parked nothing: the live path must agree with the inline one."""

    async def idle() -> bool:
        stored = await deps.pool.fetchval("SELECT count(*) FROM eventstore.events")
        stream = await deps.js.stream_info(deps.settings.stream_name)
        for name in SETTLED:
            try:
                info = await deps.js.consumer_info(deps.settings.stream_name, name)
            except NotFoundError:
                continue  # not running in this deployment
            if info.num_pending or info.num_ack_pending:
                return False
        return bool(stream.state.messages >= stored)

    await eventually(idle, timeout=20)
    for name in SETTLED:
        parked = await list_parked(deps.pool, consumer=name)
        assert parked == [], f"the live projection {name} failed on an event"


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


# A gateway with the tickets service behind it, and a signed-in team on it (ticket route tests).

APPROVALS_META = Metadata(actor=Actor.service("approvals"), service="approvals")


@contextlib.asynccontextmanager
async def scratch_deployment(
    server_urls: tuple[str, str], data_dir: Path
) -> AsyncIterator[tuple[Settings, str, str]]:
    """What tests/conftest.py's per-test fixtures give (settings, database URL, NATS URL), for a
    longer scope: a fresh database and namespace, dropped afterwards."""
    nats_url = server_urls[1]
    settings = Settings(
        env="test",
        namespace=unique_name("t"),
        data_dir=data_dir,
        handler_max_attempts=3,
        secret=os.urandom(32).hex(),
    )
    try:
        async with scratch_database(server_urls[0]) as database_url:
            yield settings, database_url, nats_url
    finally:
        await delete_namespace_streams(nats_url, settings.stream_name)


@contextlib.asynccontextmanager
async def running_desk(
    settings: Settings, database_url: str, nats_url: str, *, replica: str = "desk"
) -> AsyncIterator[Gateway]:
    """The gateway, the people and the tickets service in one System (a single-process
    deployment)."""
    async with running_gateway(
        settings, database_url, nats_url, replica=replica, services=(PEOPLE, SERVICE, TICKETS)
    ) as gateway:
        yield gateway


@dataclass(frozen=True)
class Member:
    """A registered, signed-in user; `cookie` is the value of their session cookie."""

    id: str
    email: str
    role: str
    cookie: str


def signed_in_client(
    gateway: Gateway, member: Member | None, ip: str = "127.0.0.1"
) -> httpx.AsyncClient:
    """A new client with its own cookie jar, signed in as `member` (anonymous for None)."""
    made = gateway.client(ip)
    if member is not None:
        made.cookies.set(SESSION_COOKIE, member.cookie)
    return made


async def join(gateway: Gateway, email: str, *, role: str, admin: Member | None) -> Member:
    """Register and sign in a user; `admin` gives them `role` when registration gave another."""
    made = gateway.client()
    user = await register(made, email)
    if user["role"] != role:
        assert admin is not None, f"{email} registered as {user['role']}, not {role}"
        changed = await signed_in_client(gateway, admin).patch(
            f"/api/v1/users/{user['id']}", json={"role": role}
        )
        assert changed.status_code == 200, changed.text
    await login(made, email)
    cookie = made.cookies.get(SESSION_COOKIE)
    assert cookie is not None
    return Member(id=user["id"], email=email, role=role, cookie=cookie)


@dataclass
class Team:
    """An admin, an operator and two requesters (Alice, Bob) signed in on a desk."""

    gateway: Gateway
    admin: Member
    operator: Member
    alice: Member
    bob: Member

    def client(self, member: Member | None = None) -> httpx.AsyncClient:
        return signed_in_client(self.gateway, member)

    async def open_ticket(self, by: Member | None = None, **overrides: Any) -> dict[str, Any]:
        """An incident ticket (the simplest built-in type) opened through HTTP by `by` (Alice)."""
        body = {"type": "incident", "title": "API is down", "fields": {"service": "api"}}
        response = await self.client(by or self.alice).post(
            "/api/v1/tickets", json=body | overrides
        )
        assert response.status_code == 201, response.text
        ticket: dict[str, Any] = response.json()
        return ticket

    async def move(self, key: str, *statuses: str, by: Member | None = None) -> dict[str, Any]:
        """Change the ticket's status through HTTP, in order (as the operator unless `by`)."""
        ticket: dict[str, Any] = {}
        for status in statuses:
            response = await self.client(by or self.operator).post(
                f"/api/v1/tickets/{key}/status", json={"status": status}
            )
            assert response.status_code == 200, response.text
            ticket = response.json()
        return ticket

    async def request_approval(self, key: str, approval_id: str) -> None:
        """Lock the ticket the way the approvals service will: append to the ticket's stream."""
        event = TicketApprovalRequested(approval_id=approval_id, action="resolve")
        await self.gateway.deps.store.append(
            f"ticket-{key}", [event], expected_version=ANY, metadata=APPROVALS_META
        )

    async def decide_approval(self, key: str, approval_id: str) -> None:
        event = TicketApprovalDecided(approval_id=approval_id, decision="approved")
        await self.gateway.deps.store.append(
            f"ticket-{key}", [event], expected_version=ANY, metadata=APPROVALS_META
        )


@contextlib.asynccontextmanager
async def team_on_desk(
    server_urls: tuple[str, str], data_dir: Path, *, rate_limits: RateLimits | None = None
) -> AsyncIterator[Team]:
    """A fresh deployment running a desk with a team on it. Before this yields, the tickets
    service knows the operator as staff (so tickets can be assigned to them)."""
    async with (
        scratch_deployment(server_urls, data_dir) as (settings, database_url, nats_url),
        running_desk(settings, database_url, nats_url) as gateway,
    ):
        if rate_limits is not None:
            gateway.app.state.rate_limits = rate_limits
        admin = await join(gateway, "admin@example.com", role="admin", admin=None)
        team = Team(
            gateway=gateway,
            admin=admin,
            operator=await join(gateway, "operator@example.com", role="operator", admin=admin),
            alice=await join(gateway, "alice@example.com", role="requester", admin=admin),
            bob=await join(gateway, "bob@example.com", role="requester", admin=admin),
        )

        async def operator_is_staff() -> bool:
            return await tickets_queries.is_staff(gateway.deps.pool, team.operator.id)

        await eventually(operator_is_staff)
        yield team
