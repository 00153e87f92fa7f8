"""Helpers of the notification tests: jobs fired on a ticket whose requester and assignee are
known, waiting until the executor knows who everyone is, and reading a user's notifications
over the executor's RPC methods."""

from __future__ import annotations

from typing import Any
from uuid import uuid4

from libs.contracts.rules import RuleBody
from libs.events.catalog.people import UserDeactivated, UserReactivated
from libs.events.envelope import Actor, Metadata
from libs.events.runtime import Deps
from libs.events.store import ANY, NO_STREAM
from libs.events.testing import eventually
from libs.rules.firing import RuleVersion
from services.rules.domain import decide_firing
from tests.executor.jobs import queued, trigger
from tests.tickets.support import Who

RULES = Metadata(actor=Actor.service("rules"), service="rules")
PEOPLE = Metadata(actor=Actor.system(), service="people")


async def people_known(deps: Deps, count: int) -> None:
    """Wait until `executor.people` has `count` people."""

    async def known() -> int:
        return int(await deps.pool.fetchval("SELECT count(*) FROM executor.people"))

    await eventually(known, until=lambda n: n >= count, timeout=20)


async def set_active(deps: Deps, user_id: str, active: bool) -> None:
    """Deactivate or reactivate a user as the people service does, and wait for the executor."""
    event = UserReactivated(user_id=user_id) if active else UserDeactivated(user_id=user_id)
    await deps.store.append(f"user-{user_id}", [event], expected_version=ANY, metadata=PEOPLE)

    async def seen() -> bool | None:
        value = await deps.pool.fetchval(
            "SELECT active FROM executor.people WHERE user_id = $1", user_id
        )
        return value if value is None else bool(value)

    await eventually(seen, until=lambda v: v is active, timeout=20)


async def queue_on(
    deps: Deps,
    actions: list[dict[str, Any]],
    *,
    ticket: str,
    requester: str | None = None,
    assignee: str | None = None,
) -> str:
    """Queue a job on `ticket` (with this requester and assignee) as the rules service does."""
    body = RuleBody.model_validate(
        {"name": "notify rule", "trigger": {"event": "ticket.created"}, "actions": actions}
    )
    view: dict[str, Any] = {
        "key": ticket,
        "title": "API is down",
        "status": "open",
        "tags": [],
        "requester_id": requester,
        "assignee_id": assignee,
    }
    rule = RuleVersion(f"r-{uuid4().hex[:8]}", 1, body)
    events = decide_firing(rule, trigger(ticket), view)
    job = queued(events).job_id
    await deps.store.append(f"job-{job}", events, expected_version=NO_STREAM, metadata=RULES)
    return job


async def call(deps: Deps, method: str, body: dict[str, Any], *, by: Who) -> Any:
    return await deps.rpc.call(
        "executor", method, body, actor=by.actor, role=by.role, on_behalf_of=by.on_behalf_of
    )


async def inbox(deps: Deps, who: Who, **query: Any) -> list[dict[str, Any]]:
    """Every one of `who`'s notifications, newest first (all pages)."""
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        page = await call(deps, "notifications.list", {**query, "cursor": cursor}, by=who)
        items += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return items
