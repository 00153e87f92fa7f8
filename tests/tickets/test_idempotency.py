"""Commands from automation with an idempotency key: a repeat appends nothing; the events carry
the cause automation named; a refused command is decided again when repeated."""

from __future__ import annotations

from uuid import uuid4

from libs.events.envelope import Actor
from tests.tickets.support import OPERATOR, Desk, Who

EXECUTOR = Who(Actor.service("executor"), None)


async def test_a_repeated_command_with_the_same_key_appends_nothing(desk: Desk) -> None:
    key = (await desk.open())["key"]
    body = {"key": key, "status": "resolved", "idempotency_key": "job-abc/0"}
    first = await desk.call("tickets.change_status", body, by=EXECUTOR)
    again = await desk.call("tickets.change_status", body, by=EXECUTOR)  # not INVALID_TRANSITION
    assert first["status"] == again["status"] == "resolved"
    tagged = {"key": key, "tag": "prod", "idempotency_key": "job-abc/1"}
    for _ in range(2):
        await desk.call("tickets.add_tag", tagged, by=EXECUTOR)
    assert await desk.event_types(key) == [
        "ticket.created",
        "ticket.status_changed",
        "ticket.tagged",
    ]


async def test_the_events_carry_the_cause_automation_named(desk: Desk) -> None:
    key = (await desk.open())["key"]
    cause = uuid4()
    body = {
        "key": key,
        "priority": "urgent",
        "idempotency_key": "job-x/0",
        "cause": {"event_id": str(cause), "depth": 2},
    }
    await desk.call("tickets.set_priority", body, by=EXECUTOR)
    [changed] = await desk.deps.store.read_stream(f"ticket-{key}", from_version=2)
    assert changed.metadata.causation_id == cause and changed.metadata.causation_depth == 3
    assert changed.metadata.actor == Actor.service("executor")


async def test_a_key_from_a_person_is_ignored(desk: Desk) -> None:
    key = (await desk.open())["key"]
    body = {"key": key, "status": "in_progress", "idempotency_key": "k"}
    await desk.call("tickets.change_status", body, by=OPERATOR)
    error = await desk.refused("tickets.change_status", body, by=OPERATOR)
    assert error.code == "INVALID_TRANSITION"


async def test_a_refused_command_is_decided_again_when_repeated(desk: Desk) -> None:
    key = (await desk.open())["key"]
    await desk.request_approval(key)
    body = {"key": key, "status": "resolved", "idempotency_key": "job-y/0"}
    error = await desk.refused("tickets.change_status", body, by=EXECUTOR)
    assert error.code == "PENDING_APPROVAL"
    await desk.decide_approval(key)
    ticket = await desk.call("tickets.change_status", body, by=EXECUTOR)
    assert ticket["status"] == "resolved"
    assert (await desk.event_types(key)).count("ticket.status_changed") == 1
