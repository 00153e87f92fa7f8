"""The `notify` action end to end on real Postgres and NATS: each kind of recipient gets one
in-app notification with the rendered message, a role reaches only its active members, a step
with nobody to notify fails for good, and a step run again notifies nobody twice."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from libs.contracts.rules import NotifyParams
from libs.events.catalog.notifications import NotificationCreated
from services.executor.actions import ActionContext, StepFailed, prepare
from services.executor.actions import notify as notify_action
from services.executor.history import load
from tests.executor.notices import inbox, people_known, queue_on, set_active
from tests.executor.stack import Stack
from tests.tickets.support import ADMIN, ALICE, BOB, OPERATOR, PEOPLE, register, user


@pytest.fixture
async def known(stack: Stack) -> AsyncIterator[Stack]:
    """The stack once the executor knows every test person."""
    await people_known(stack.deps, len(PEOPLE))
    yield stack


def notify(to: str, message: str = "{{ ticket.key }}: {{ ticket.title }}") -> dict[str, Any]:
    return {"type": "notify", "params": {"to": to, "message": message}}


async def test_each_kind_of_recipient_gets_one_notification(known: Stack) -> None:
    actions = [
        notify("requester"),
        notify("assignee"),
        notify(f"user:{BOB.id}"),
        notify("role:admin"),
    ]
    job_id = await queue_on(
        known.deps, actions, ticket="OPS-7", requester=ALICE.id, assignee=OPERATOR.id
    )
    job = await known.settled(job_id)
    assert job["state"] == "succeeded", job
    for who in (ALICE, OPERATOR, BOB, ADMIN):
        [got] = await inbox(known.deps, who)
        assert got["kind"] == "notify" and got["message"] == "OPS-7: API is down"
        assert got["ticket"] == "OPS-7" and got["job_id"] == job_id and got["read"] is False
    results = [item for item in job["history"] if item["type"] == "job.step_succeeded"]
    assert [r["detail"]["result"]["notified"] for r in results] == [
        [ALICE.id],
        [OPERATOR.id],
        [BOB.id],
        [ADMIN.id],
    ]


async def test_a_role_reaches_only_its_active_members(known: Stack) -> None:
    gone, back = user("u-admin-gone", "admin"), user("u-admin-back", "admin")
    await register(known.deps, gone, "admin")
    await register(known.deps, back, "admin")
    await people_known(known.deps, len(PEOPLE) + 2)
    await set_active(known.deps, gone.id, False)
    await set_active(known.deps, back.id, False)
    await set_active(known.deps, back.id, True)
    job = await known.settled(await queue_on(known.deps, [notify("role:admin")], ticket="OPS-8"))
    assert job["state"] == "succeeded", job
    assert len(await inbox(known.deps, ADMIN)) == 1
    assert len(await inbox(known.deps, back)) == 1
    assert await inbox(known.deps, gone) == []
    assert await inbox(known.deps, OPERATOR) == []


@pytest.mark.parametrize(
    ("to", "error"),
    [
        ("user:u-nobody", "u-nobody is not an active user"),
        ("requester", "its ticket has no requester"),
        ("assignee", "its ticket has no assignee"),
    ],
)
async def test_a_step_with_nobody_to_notify_fails_for_good(
    known: Stack, to: str, error: str
) -> None:
    job = await known.settled(await queue_on(known.deps, [notify(to)], ticket="OPS-9"))
    assert job["state"] == "dead_lettered" and job["attempts"] == 1, job
    assert error in job["last_error"], job


async def test_a_deactivated_user_is_nobody_to_notify(known: Stack) -> None:
    await set_active(known.deps, BOB.id, False)
    job = await known.settled(
        await queue_on(known.deps, [notify(f"user:{BOB.id}")], ticket="OPS-3")
    )
    assert job["state"] == "dead_lettered" and job["attempts"] == 1, job
    assert "nobody to notify" in job["last_error"], job
    assert await inbox(known.deps, BOB) == []


async def test_a_step_run_again_or_twice_at_once_notifies_once(known: Stack) -> None:
    """A lease expiry hands a step to a worker again (the first may have notified and died
    before recording it), or two replicas run it: the notifications are written once."""
    deps = known.deps
    action = notify(f"user:{BOB.id}", "deploy {{ ticket.key }}")
    job_id = await queue_on(deps, [action], ticket="OPS-5")
    job = await known.settled(job_id)
    assert job["state"] == "succeeded", job
    _, stream = await load(deps.store, job_id)
    async with httpx.AsyncClient() as http:
        context = ActionContext(
            deps=deps,
            job_id=job_id,
            step=0,
            attempt=2,
            ticket="OPS-5",
            queued=stream[0],
            values=stream[0].data["context"],
            http=http,
            timeout_s=3.0,
        )
        params = prepare("notify", action["params"], context.values)
        assert isinstance(params, NotifyParams)
        again = await notify_action.run(params, context)
        both = await asyncio.gather(*(notify_action.run(params, context) for _ in range(2)))
    [got] = await inbox(deps, BOB)
    assert got["message"] == "deploy OPS-5"
    assert (
        again["notifications"]
        == [got["id"]]
        == both[0]["notifications"]
        == both[1]["notifications"]
    )
    created = await deps.pool.fetchval(
        "SELECT count(*) FROM eventstore.events WHERE type = $1", NotificationCreated.event_type
    )
    assert created == 1


async def test_an_unrenderable_message_fails_the_step_for_good(known: Stack) -> None:
    with pytest.raises(StepFailed) as failed:
        prepare("notify", {"to": "requester", "message": "{{ ticket.key"}, {"ticket": {}})
    assert failed.value.retryable is False
