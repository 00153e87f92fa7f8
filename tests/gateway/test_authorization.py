"""Who may call what: every route the gateway serves, called by every kind of caller, answers
the status this table gives. A route added without a row fails
test_the_table_has_a_row_for_every_route_the_gateway_serves.

Callers: anonymous; the owner (the requester whose ticket or token the call targets); another
requester; an operator; an admin. Requesters get 404, never 403, for a ticket that is not theirs
on the routes requesters may use; staff-only routes answer 403 to any requester."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

import pytest
from fastapi import FastAPI
from starlette.routing import BaseRoute
from starlette.types import Message

from libs.approval_links import mint
from libs.events.envelope import Actor, Metadata
from libs.events.testing import eventually, isolated_system
from services.approvals.app import SERVICE as APPROVALS_SERVICE
from services.executor.app import SERVICE as EXECUTOR_SERVICE
from services.gateway.people.ratelimit import Limit, RateLimits
from services.gateway.people.security import SESSION_COOKIE
from services.rules.app import SERVICE as RULES_SERVICE
from tests.executor.jobs import firing, queued
from tests.gateway.helpers import PASSWORD, Member, Team, join, login, team_on_desk

RULES_META = Metadata(actor=Actor.service("rules"), service="rules")


class Who(StrEnum):
    ANONYMOUS = "anonymous"
    OWNER = "owner"
    OTHER = "other"
    OPERATOR = "operator"
    ADMIN = "admin"


ERROR_CODES = {401: "UNAUTHENTICATED", 403: "FORBIDDEN", 404: "NOT_FOUND"}
"""The error code each of these statuses carries on every route of the table."""

DOCUMENTATION = frozenset(
    {
        ("GET", "/openapi.json"),
        ("GET", "/docs"),
        ("GET", "/docs/oauth2-redirect"),
        ("GET", "/redoc"),
    }
)
"""FastAPI's own documentation routes: public by design, not part of the table."""

ROOMY = RateLimits(
    register_per_ip=Limit("register-ip", 1_000, 60),
    login_per_ip=Limit("login-ip", 1_000, 60),
    tokens_per_user=Limit("tokens-user", 1_000, 60),
    tickets_per_user=Limit("tickets-user", 1_000, 60),
    comments_per_user=Limit("comments-user", 1_000, 60),
    ticket_writes_per_user=Limit("ticket-writes-user", 1_000, 60),
)
"""Every call here comes from one address and the owner opens a ticket for nearly every case;
rate limits and quotas have their own tests."""

_serial = itertools.count(1)


@dataclass(frozen=True)
class Call:
    """The concrete request of one case; `cookie` replaces the caller's session when set."""

    path: str
    json: Any = None
    params: dict[str, str] | None = None
    cookie: str | None = None


@dataclass
class World:
    """One deployment shared by every case: the team, a bystander, a custom ticket type and a
    ticket of the owner's that read-only cases use (mutating cases make their own)."""

    team: Team
    bystander: Member
    custom_type: str
    ticket: str

    def member(self, who: Who) -> Member | None:
        return {
            Who.ANONYMOUS: None,
            Who.OWNER: self.team.alice,
            Who.OTHER: self.team.bob,
            Who.OPERATOR: self.team.operator,
            Who.ADMIN: self.team.admin,
        }[who]

    @property
    def app(self) -> FastAPI:
        return self.team.gateway.app

    async def fresh_ticket(self, *statuses: str) -> str:
        """A new ticket of the owner's, moved through `statuses` by the operator."""
        key: str = (await self.team.open_ticket())["key"]
        await self.team.move(key, *statuses)
        return key


Prepare = Callable[[World, Who], Awaitable[Call]]


@dataclass(frozen=True)
class Row:
    method: str
    route: str
    expected: dict[Who, int]
    prepare: Prepare
    case: str = ""
    """What the call does, when a route has several rows."""
    streaming: bool = False
    refusal: str | None = None
    """The code a 403 of this route carries instead of FORBIDDEN (the contract's own)."""

    @property
    def name(self) -> str:
        return f"{self.method} {self.route}" + (f" [{self.case}]" if self.case else "")


def expect(anonymous: int, owner: int, other: int, operator: int, admin: int) -> dict[Who, int]:
    return {
        Who.ANONYMOUS: anonymous,
        Who.OWNER: owner,
        Who.OTHER: other,
        Who.OPERATOR: operator,
        Who.ADMIN: admin,
    }


def everyone(status: int) -> dict[Who, int]:
    return expect(status, status, status, status, status)


def users(status: int) -> dict[Who, int]:
    """Any signed-in user gets `status`; anonymous 401."""
    return expect(401, status, status, status, status)


def admins(status: int) -> dict[Who, int]:
    return expect(401, 403, 403, 403, status)


def staff(status: int) -> dict[Who, int]:
    return expect(401, 403, 403, status, status)


def ticket_users(status: int) -> dict[Who, int]:
    """The owner and staff get `status`; another requester 404 (the ticket is not theirs)."""
    return expect(401, status, 404, status, status)


# How each case builds its request.


def fixed(path: str, json: Any = None, params: dict[str, str] | None = None) -> Prepare:
    async def prepare(world: World, who: Who) -> Call:
        return Call(path, json, params)

    return prepare


def on_shared_ticket(suffix: str = "") -> Prepare:
    async def prepare(world: World, who: Who) -> Call:
        return Call(f"/api/v1/tickets/{world.ticket}{suffix}")

    return prepare


def on_fresh_ticket(
    suffix: str,
    json: Any = None,
    *,
    params: dict[str, str] | None = None,
    statuses: tuple[str, ...] = (),
    tag: str | None = None,
) -> Prepare:
    """A new ticket of the owner's (moved through `statuses`, tagged `tag`) for this case only."""

    async def prepare(world: World, who: Who) -> Call:
        key = await world.fresh_ticket(*statuses)
        if tag is not None:
            tagged = await world.team.client(world.team.operator).post(
                f"/api/v1/tickets/{key}/tags", json={"tag": tag}
            )
            assert tagged.status_code == 200, tagged.text
        return Call(f"/api/v1/tickets/{key}{suffix}", json, params)

    return prepare


async def register_someone_new(world: World, who: Who) -> Call:
    email = f"new-{next(_serial)}@example.com"
    return Call("/api/v1/auth/register", {"email": email, "name": "New", "password": PASSWORD})


async def log_in_as_oneself(world: World, who: Who) -> Call:
    member = world.member(who) or world.bystander
    return Call("/api/v1/auth/login", {"email": member.email, "password": PASSWORD})


async def log_out_a_fresh_session(world: World, who: Who) -> Call:
    """Logout ends the session, so each case signs in anew rather than ending the shared one."""
    member = world.member(who)
    if member is None:
        return Call("/api/v1/auth/logout")
    client = world.team.gateway.client()
    await login(client, member.email)
    return Call("/api/v1/auth/logout", cookie=client.cookies.get(SESSION_COOKIE))


async def revoke_a_token_of_the_owners(world: World, who: Who) -> Call:
    made = await world.team.client(world.team.alice).post(
        "/api/v1/tokens", json={"name": f"t{next(_serial)}", "scopes": ["api"]}
    )
    assert made.status_code == 201, made.text
    return Call(f"/api/v1/tokens/{made.json()['id']}")


async def give_the_bystander_a_role(world: World, who: Who) -> Call:
    return Call(f"/api/v1/users/{world.bystander.id}", {"role": "requester"})


async def deactivate_someone_new(world: World, who: Who) -> Call:
    newcomer = await join(
        world.team.gateway, f"leaver-{next(_serial)}@example.com", role="requester", admin=None
    )
    return Call(f"/api/v1/users/{newcomer.id}", {"active": False})


async def end_a_fresh_session_of_the_owners(world: World, who: Who) -> Call:
    client = world.team.gateway.client()
    await login(client, world.team.alice.email)
    cookie = client.cookies.get(SESSION_COOKIE)
    assert cookie is not None
    return Call(f"/api/v1/sessions/{cookie.split('.')[0]}")


async def define_a_new_type(world: World, who: Who) -> Call:
    return Call("/api/v1/ticket-types", {"key": f"errand_{next(_serial)}", "name": "Errand"})


async def revise_the_custom_type(world: World, who: Who) -> Call:
    fields = [{"key": "room", "label": "Room", "type": "text"}]
    return Call(f"/api/v1/ticket-types/{world.custom_type}", {"fields": fields})


async def close_a_fresh_ticket_in_bulk(world: World, who: Who) -> Call:
    return Call("/api/v1/tickets/bulk", {"keys": [await world.fresh_ticket()], "op": "close"})


async def assign_a_fresh_ticket_to_the_operator(world: World, who: Who) -> Call:
    key = await world.fresh_ticket()
    return Call(f"/api/v1/tickets/{key}/assign", {"assignee_id": world.team.operator.id})


async def relate_a_fresh_ticket_to_the_shared_one(world: World, who: Who) -> Call:
    key = await world.fresh_ticket()
    return Call(f"/api/v1/tickets/{key}/relations", {"relation": "related", "target": world.ticket})


RULE = {
    "name": "Tag API incidents",
    "trigger": {"event": "ticket.created"},
    "actions": [{"type": "add_tag", "params": {"tag": "api"}}],
}
SINCE = "2026-01-01T00:00:00Z"


def on_fresh_rule(
    suffix: str = "", json: Any = None, params: dict[str, str] | None = None
) -> Prepare:
    """A new rule, made by the admin for this case only."""

    async def prepare(world: World, who: Who) -> Call:
        made = await world.team.client(world.team.admin).post("/api/v1/rules", json=RULE)
        assert made.status_code == 201, made.text
        return Call(f"/api/v1/rules/{made.json()['id']}{suffix}", json, params)

    return prepare


async def queue_job(world: World, action: dict[str, Any]) -> str:
    """A job on the shared ticket, queued the way the rules service queues one; its id."""
    deps = world.team.gateway.deps
    events = firing([action], ticket=world.ticket)
    job_id = queued(events).job_id
    await deps.store.append(f"job-{job_id}", events, expected_version=0, metadata=RULES_META)
    return job_id


async def on_a_job(world: World, who: Who) -> Call:
    return Call(
        f"/api/v1/jobs/{await queue_job(world, {'type': 'add_tag', 'params': {'tag': 'x'}})}"
    )


async def retry_a_dead_letter(world: World, who: Who) -> Call:
    """A job refused at once (the shared ticket is open already), dead-lettered for this case."""
    job_id = await queue_job(world, {"type": "set_status", "params": {"status": "open"}})
    admin = world.team.client(world.team.admin)

    async def state() -> str:
        found = await admin.get(f"/api/v1/jobs/{job_id}")
        return str(found.json().get("state")) if found.status_code == 200 else ""

    await eventually(state, until=lambda s: s == "dead_lettered")
    return Call(f"/api/v1/jobs/{job_id}/retry")


WEBHOOK = {"name": "hook", "kind": "webhook", "url": "https://hooks.example.com/x", "secret": "k"}


def on_fresh_webhook(json: Any = None) -> Prepare:
    async def prepare(world: World, who: Who) -> Call:
        made = await world.team.client(world.team.admin).post("/api/v1/webhooks", json=WEBHOOK)
        assert made.status_code == 201, made.text
        return Call(f"/api/v1/webhooks/{made.json()['id']}", json)

    return prepare


SUBSCRIPTION = {**WEBHOOK, "events": ["never.happens"]}


def on_fresh_subscription(path: str, json: Any = None) -> Prepare:
    async def prepare(world: World, who: Who) -> Call:
        made = await world.team.client(world.team.admin).post("/api/v1/webhooks", json=SUBSCRIPTION)
        assert made.status_code == 201, made.text
        return Call(f"/api/v1/webhooks/{made.json()['id']}{path}", json)

    return prepare


async def read_a_notification_of_the_owners(world: World, who: Who) -> Call:
    """A notification for the owner alone, from a `notify` job, for this case only."""
    alice = world.team.alice
    action = {"type": "notify", "params": {"to": f"user:{alice.id}", "message": "hello"}}
    job_id = await queue_job(world, action)
    owner = world.team.client(alice)

    async def mine() -> str | None:
        listed = await owner.get("/api/v1/notifications")
        items = listed.json()["items"] if listed.status_code == 200 else []
        return next((i["id"] for i in items if i["job_id"] == job_id), None)

    return Call(f"/api/v1/notifications/{await eventually(mine, timeout=20)}/read")


INCIDENT = {"type": "incident", "title": "Disk full", "fields": {"service": "db"}}
GATED_TITLE = "Needs an approval"
GATED_RULE = {
    "name": "Gate tickets that ask for it",
    "trigger": {"event": "ticket.created"},
    "conditions": {"field": "title", "op": "eq", "value": GATED_TITLE},
    "actions": [{"type": "add_tag", "params": {"tag": "approved"}}],
    "approval": {"approvers": {"roles": ["operator", "admin"]}, "quorum": 1},
}
"""Made once for the world: only a ticket with this title is gated, so no other row's ticket
is locked."""


async def fresh_approval(world: World) -> str:
    """A pending approval request on a new gated ticket of the owner's; its id."""
    key = (await world.team.open_ticket(title=GATED_TITLE))["key"]
    pool = world.team.gateway.deps.pool

    async def opened() -> str | None:
        found = await pool.fetchval(
            "SELECT approval_id FROM approvals.requests WHERE ticket = $1", key
        )
        return None if found is None else str(found)

    approval_id = await eventually(opened, timeout=20)
    assert approval_id is not None
    return approval_id


def on_fresh_approval(suffix: str = "", json: Any = None) -> Prepare:
    async def prepare(world: World, who: Who) -> Call:
        return Call(f"/api/v1/approvals/{await fresh_approval(world)}{suffix}", json)

    return prepare


async def on_fresh_link(world: World, who: Who) -> Call:
    """A signed approve link for the operator on a fresh request: whoever holds it may use it."""
    approval_id = await fresh_approval(world)
    link = mint(
        world.team.gateway.app.state.secret,
        base_url="http://test",
        approval_id=approval_id,
        vote="approve",
        user_id=world.team.operator.id,
        expires_at=datetime.now(UTC) + timedelta(hours=1),
    )
    return Call(link.removeprefix("http://test"))


ROWS: tuple[Row, ...] = (
    Row("GET", "/healthz", everyone(200), fixed("/healthz")),
    Row("GET", "/readyz", everyone(200), fixed("/readyz")),
    Row("GET", "/metrics", everyone(200), fixed("/metrics")),
    Row("POST", "/api/v1/auth/register", everyone(201), register_someone_new),
    Row("POST", "/api/v1/auth/login", everyone(200), log_in_as_oneself),
    Row("POST", "/api/v1/auth/logout", users(204), log_out_a_fresh_session),
    Row("GET", "/api/v1/me", users(200), fixed("/api/v1/me")),
    Row(
        "POST",
        "/api/v1/tokens",
        users(201),
        fixed("/api/v1/tokens", {"name": "ci", "scopes": ["api"]}),
    ),
    Row("GET", "/api/v1/tokens", users(200), fixed("/api/v1/tokens")),
    Row(
        "DELETE",
        "/api/v1/tokens/{token_id}",
        expect(401, 204, 404, 404, 404),
        revoke_a_token_of_the_owners,
        case="the owner's token",
    ),
    Row("GET", "/api/v1/sessions", users(200), fixed("/api/v1/sessions")),
    Row(
        "DELETE",
        "/api/v1/sessions/{session_id}",
        expect(401, 204, 404, 404, 404),
        end_a_fresh_session_of_the_owners,
        case="the owner's session",
    ),
    Row("GET", "/api/v1/users", admins(200), fixed("/api/v1/users")),
    Row(
        "PATCH",
        "/api/v1/users/{user_id}",
        admins(200),
        give_the_bystander_a_role,
        case="change a role",
    ),
    Row(
        "PATCH",
        "/api/v1/users/{user_id}",
        admins(200),
        deactivate_someone_new,
        case="deactivate a user",
    ),
    Row("GET", "/api/v1/events", admins(200), fixed("/api/v1/events")),
    Row("GET", "/api/v1/stream", users(200), fixed("/api/v1/stream"), streaming=True),
    Row("GET", "/api/v1/ticket-types", users(200), fixed("/api/v1/ticket-types")),
    Row("POST", "/api/v1/ticket-types", admins(201), define_a_new_type),
    Row(
        "GET",
        "/api/v1/ticket-types/{key}",
        users(200),
        fixed("/api/v1/ticket-types/incident"),
    ),
    Row("PUT", "/api/v1/ticket-types/{key}", admins(200), revise_the_custom_type),
    Row("POST", "/api/v1/tickets", users(201), fixed("/api/v1/tickets", INCIDENT)),
    Row("GET", "/api/v1/tickets", users(200), fixed("/api/v1/tickets")),
    Row("GET", "/api/v1/tickets/export.csv", users(200), fixed("/api/v1/tickets/export.csv")),
    Row("POST", "/api/v1/tickets/bulk", staff(200), close_a_fresh_ticket_in_bulk),
    Row("GET", "/api/v1/tickets/{key}", ticket_users(200), on_shared_ticket()),
    Row(
        "POST",
        "/api/v1/tickets/{key}/status",
        expect(401, 403, 404, 200, 200),
        on_fresh_ticket("/status", {"status": "in_progress"}),
        case="start work on an open ticket",
    ),
    Row(
        "POST",
        "/api/v1/tickets/{key}/status",
        ticket_users(200),
        on_fresh_ticket("/status", {"status": "open"}, statuses=("resolved",)),
        case="reopen a resolved ticket",
    ),
    Row("POST", "/api/v1/tickets/{key}/assign", staff(200), assign_a_fresh_ticket_to_the_operator),
    Row(
        "POST",
        "/api/v1/tickets/{key}/priority",
        staff(200),
        on_fresh_ticket("/priority", {"priority": "urgent"}),
    ),
    Row(
        "POST",
        "/api/v1/tickets/{key}/tags",
        ticket_users(200),
        on_fresh_ticket("/tags", {"tag": "billing"}),
    ),
    Row(
        "DELETE",
        "/api/v1/tickets/{key}/tags",
        ticket_users(200),
        on_fresh_ticket("/tags", params={"tag": "billing"}, tag="billing"),
    ),
    Row(
        "POST",
        "/api/v1/tickets/{key}/comments",
        ticket_users(201),
        on_fresh_ticket("/comments", {"body": "any news?"}),
        case="public",
    ),
    Row(
        "POST",
        "/api/v1/tickets/{key}/comments",
        expect(401, 403, 404, 201, 201),
        on_fresh_ticket("/comments", {"body": "root cause: cron", "internal": True}),
        case="internal",
    ),
    Row("GET", "/api/v1/tickets/{key}/comments", ticket_users(200), on_shared_ticket("/comments")),
    Row(
        "POST",
        "/api/v1/tickets/{key}/relations",
        ticket_users(200),
        relate_a_fresh_ticket_to_the_shared_one,
    ),
    Row(
        "POST",
        "/api/v1/tickets/{key}/rating",
        expect(401, 200, 404, 403, 403),
        on_fresh_ticket("/rating", {"score": 5}, statuses=("resolved",)),
        case="a resolved ticket",
    ),
    Row(
        "POST",
        "/api/v1/tickets/{key}/rating",
        expect(401, 409, 404, 403, 403),
        on_fresh_ticket("/rating", {"score": 5}),
        case="an open ticket",
    ),
    Row("GET", "/api/v1/tickets/{key}/events", ticket_users(200), on_shared_ticket("/events")),
    Row("GET", "/api/v1/rules", staff(200), fixed("/api/v1/rules")),
    Row("POST", "/api/v1/rules", admins(201), fixed("/api/v1/rules", RULE)),
    Row(
        "POST",
        "/api/v1/rules/dry-run",
        admins(200),
        fixed("/api/v1/rules/dry-run", {"rule": RULE, "since": SINCE}),
    ),
    Row("GET", "/api/v1/rules/templates", staff(200), fixed("/api/v1/rules/templates")),
    Row(
        "POST",
        "/api/v1/rules/templates/{key}",
        admins(200),
        fixed("/api/v1/rules/templates/tag-production-deployments"),
    ),
    Row("GET", "/api/v1/rules/{id}", staff(200), on_fresh_rule()),
    Row("PATCH", "/api/v1/rules/{id}", admins(200), on_fresh_rule(json={"name": "Renamed"})),
    Row("DELETE", "/api/v1/rules/{id}", admins(200), on_fresh_rule()),
    Row("GET", "/api/v1/rules/{id}/versions", staff(200), on_fresh_rule("/versions")),
    Row(
        "GET",
        "/api/v1/rules/{id}/diff",
        staff(200),
        on_fresh_rule("/diff", params={"a": "1", "b": "1", "since": SINCE}),
    ),
    Row("GET", "/api/v1/jobs", staff(200), fixed("/api/v1/jobs")),
    Row("GET", "/api/v1/jobs/{id}", staff(200), on_a_job),
    Row("POST", "/api/v1/jobs/{id}/retry", staff(200), retry_a_dead_letter),
    Row("GET", "/api/v1/webhooks", admins(200), fixed("/api/v1/webhooks")),
    Row("POST", "/api/v1/webhooks", admins(201), fixed("/api/v1/webhooks", WEBHOOK)),
    Row("GET", "/api/v1/webhooks/{id}", admins(200), on_fresh_webhook()),
    Row("PATCH", "/api/v1/webhooks/{id}", admins(200), on_fresh_webhook({"name": "Renamed"})),
    Row("DELETE", "/api/v1/webhooks/{id}", admins(200), on_fresh_webhook()),
    Row(
        "GET",
        "/api/v1/webhooks/{id}/deliveries",
        admins(200),
        on_fresh_subscription("/deliveries"),
    ),
    Row("GET", "/api/v1/approvals", staff(200), fixed("/api/v1/approvals")),
    Row("GET", "/api/v1/approvals/{id}", staff(200), on_fresh_approval()),
    Row(
        "POST",
        "/api/v1/approvals/{id}/approve",
        expect(401, 403, 403, 200, 200),
        on_fresh_approval("/approve", {"reason": "ok"}),
        refusal="NOT_AN_APPROVER",
    ),
    Row(
        "POST",
        "/api/v1/approvals/{id}/reject",
        expect(401, 403, 403, 200, 200),
        on_fresh_approval("/reject"),
        refusal="NOT_AN_APPROVER",
    ),
    Row("GET", "/approve", everyone(200), on_fresh_link),
    Row("POST", "/approve", everyone(200), on_fresh_link),
    Row(
        "POST",
        "/api/v1/webhooks/{id}/replay",
        admins(200),
        on_fresh_subscription("/replay", {"after": 0}),
    ),
    Row("GET", "/api/v1/notifications", users(200), fixed("/api/v1/notifications")),
    Row(
        "POST",
        "/api/v1/notifications/{id}/read",
        expect(401, 200, 404, 404, 404),
        read_a_notification_of_the_owners,
        case="the owner's notification",
    ),
)

CASES = [pytest.param(row, who, id=f"{row.name} as {who}") for row in ROWS for who in Who]


@pytest.fixture(scope="module")
async def world(
    server_urls: tuple[str, str], tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[World]:
    data_dir = tmp_path_factory.mktemp("authorization")
    async with (
        team_on_desk(server_urls, data_dir, rate_limits=ROOMY) as team,
        isolated_system(  # the rules service, as its own process of the same deployment
            team.gateway.deps.settings,
            str(team.gateway.deps.settings.database_url),
            server_urls[1],
            services=(RULES_SERVICE,),
            replica="rules",
        ),
        isolated_system(  # the executor, as its own process of the same deployment
            team.gateway.deps.settings,
            str(team.gateway.deps.settings.database_url),
            server_urls[1],
            services=(EXECUTOR_SERVICE,),
            replica="executor",
        ),
        isolated_system(  # the approvals service, as its own process of the same deployment
            team.gateway.deps.settings,
            str(team.gateway.deps.settings.database_url),
            server_urls[1],
            services=(APPROVALS_SERVICE,),
            replica="approvals",
        ),
    ):
        gateway = team.gateway
        bystander = await join(gateway, "bystander@example.com", role="requester", admin=None)
        defined = await team.client(team.admin).post(
            "/api/v1/ticket-types", json={"key": "chores", "name": "Chores"}
        )
        assert defined.status_code == 201, defined.text
        gated = await team.client(team.admin).post("/api/v1/rules", json=GATED_RULE)
        assert gated.status_code == 201, gated.text
        ticket = (await team.open_ticket())["key"]
        yield World(team=team, bystander=bystander, custom_type="chores", ticket=ticket)


async def streaming_call(app: FastAPI, path: str, cookie: str | None) -> tuple[int, Any]:
    """The status a streaming (SSE) route answers with, and an error's body: httpx's ASGI
    transport waits for the whole body, which never ends, so drive the app directly and
    disconnect once it has started answering."""
    headers = [(b"host", b"test")]
    if cookie is not None:
        headers.append((b"cookie", f"{SESSION_COOKIE}={cookie}".encode()))
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": headers,
        "client": ("127.0.0.1", 40000),
        "server": ("test", 80),
    }
    started: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    gone = asyncio.Event()
    asked = False
    body = bytearray()

    async def receive() -> Message:
        nonlocal asked
        if not asked:
            asked = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await gone.wait()
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start" and not started.done():
            started.set_result(int(message["status"]))
        elif message["type"] == "http.response.body":
            body.extend(message.get("body", b""))

    serving = asyncio.create_task(app(scope, receive, send))
    try:
        either: set[asyncio.Future[Any]] = {started, serving}
        await asyncio.wait(either, timeout=10, return_when=asyncio.FIRST_COMPLETED)
        assert started.done(), "the route answered nothing"
        status = started.result()
        if status < 400:
            return status, None
        await asyncio.wait_for(serving, timeout=5)  # an error answer ends
        return status, json.loads(body)
    finally:
        gone.set()
        with contextlib.suppress(TimeoutError):  # wait_for has cancelled it then
            await asyncio.wait_for(serving, timeout=5)


async def send(world: World, row: Row, who: Who, call: Call) -> tuple[int, Any]:
    member = world.member(who)
    cookie = call.cookie or (member.cookie if member is not None else None)
    if row.streaming:
        return await streaming_call(world.app, call.path, cookie)
    client = world.team.gateway.client()
    if cookie is not None:
        client.cookies.set(SESSION_COOKIE, cookie)
    response = await client.request(row.method, call.path, json=call.json, params=call.params)
    is_json = response.headers.get("content-type", "").startswith("application/json")
    return response.status_code, response.json() if is_json and response.content else response.text


@pytest.mark.parametrize(("row", "who"), CASES)
async def test_each_route_answers_each_kind_of_caller_as_the_table_says(
    world: World, row: Row, who: Who
) -> None:
    call = await row.prepare(world, who)
    status, body = await send(world, row, who, call)
    expected = row.expected[who]
    assert status == expected, f"{row.method} {call.path} as {who}: {status} {body}"
    if status >= 400:
        assert isinstance(body, dict) and set(body) == {"error"}, body
        assert {"code", "message"} <= set(body["error"]), body
        code = row.refusal if status == 403 and row.refusal else ERROR_CODES.get(status)
        if code is not None:
            assert body["error"]["code"] == code, body


def _flattened(routes: Iterable[BaseRoute]) -> Iterator[Any]:
    """Every route, with included routers opened up (recent FastAPI keeps an included router as
    one entry of app.routes, whose routes effective_route_contexts() lists)."""
    for route in routes:
        included = getattr(route, "effective_route_contexts", None)
        if callable(included):
            yield from included()
        else:
            yield route


def served_routes(app: FastAPI) -> set[tuple[str, str]]:
    served: set[tuple[str, str]] = set()
    for route in _flattened(app.routes):
        for method in getattr(route, "methods", None) or ():
            if method != "HEAD":  # Starlette adds HEAD to every GET
                served.add((method, route.path))
    return served


def documented_routes(app: FastAPI) -> set[tuple[str, str]]:
    return {
        (method.upper(), path)
        for path, operations in app.openapi()["paths"].items()
        for method in operations
    }


async def test_the_table_has_a_row_for_every_route_the_gateway_serves(world: World) -> None:
    served = served_routes(world.app)
    assert documented_routes(world.app) <= served, "route listing missed documented routes"
    in_table = {(row.method, row.route) for row in ROWS}
    assert in_table - served == set(), "rows for routes the gateway does not serve"
    assert served - DOCUMENTATION - in_table == set(), "routes without a row in the table"
    assert any(path.startswith("/api/v1/") for _, path in in_table)


def test_every_row_names_a_status_for_every_kind_of_caller() -> None:
    for row in ROWS:
        assert set(row.expected) == set(Who), row.name
