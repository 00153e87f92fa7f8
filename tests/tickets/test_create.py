"""Opening tickets: the shape, validation against the type, and gapless keys under concurrency."""

from __future__ import annotations

import asyncio

import pytest

from tests.tickets.support import ALICE, BOT, Desk

TICKET_KEYS = {
    "key",
    "type",
    "type_version",
    "title",
    "description",
    "status",
    "priority",
    "requester_id",
    "assignee_id",
    "fields",
    "tags",
    "relations",
    "rating",
    "locked",
    "pending_approval",
    "created_at",
    "updated_at",
    "version",
}


async def test_a_created_ticket_is_open_has_a_key_and_reads_back_at_once(desk: Desk) -> None:
    ticket = await desk.open(description="  500s everywhere ", priority="urgent")
    assert set(ticket) == TICKET_KEYS
    assert ticket["key"] == "OPS-1"
    assert (ticket["status"], ticket["priority"], ticket["requester_id"]) == (
        "open",
        "urgent",
        ALICE.id,
    )
    assert ticket["description"] == "500s everywhere"
    assert ticket["fields"] == {"service": "api", "severity": "sev3"}  # the default applied
    assert (ticket["locked"], ticket["pending_approval"], ticket["version"]) == (False, None, 1)
    assert await desk.call("tickets.get", {"key": "OPS-1"}, by=ALICE) == ticket


async def test_priority_defaults_to_medium(desk: Desk) -> None:
    assert (await desk.open())["priority"] == "medium"


async def test_every_bad_field_is_reported_at_once(desk: Desk) -> None:
    body = {
        "type": "deployment",
        "title": "ship it",
        "fields": {"environment": "moon", "change_window": "tomorrow", "colour": "red"},
    }
    error = await desk.refused("tickets.create", body, by=ALICE)
    assert (error.status, error.code) == (422, "INVALID_FIELDS")
    assert error.details == {
        "service": "is required",
        "environment": "must be one of production, staging, dev",
        "version": "is required",
        "change_window": "must be an ISO-8601 date and time, e.g. 2025-01-31T09:00:00Z",
        "colour": "unknown field",
    }


async def test_a_conditionally_required_field_is_required_when_its_condition_holds(
    desk: Desk,
) -> None:
    fields = {"service": "api", "environment": "production", "version": "1.2"}
    body = {"type": "deployment", "title": "ship it", "fields": fields}
    error = await desk.refused("tickets.create", body, by=ALICE)
    assert error.details == {"rollback_plan": "is required"}
    staging = await desk.call(
        "tickets.create", body | {"fields": fields | {"environment": "staging"}}, by=ALICE
    )
    assert staging["fields"]["environment"] == "staging"


async def test_an_unknown_type_is_refused(desk: Desk) -> None:
    error = await desk.refused("tickets.create", {"type": "nope", "title": "x"}, by=ALICE)
    assert (error.status, error.code) == (422, "UNKNOWN_TYPE")


@pytest.mark.parametrize(
    "body",
    [
        {"title": ""},
        {"title": "   "},
        {"title": "x" * 201},
        {"priority": "whenever"},
        {"fields": ["service", "api"]},
        {"assignee_id": "u-oper"},
        {"type": None},
    ],
)
async def test_a_malformed_body_is_a_422(desk: Desk, body: dict[str, object]) -> None:
    base = {"type": "incident", "title": "down", "fields": {"service": "api"}}
    error = await desk.refused("tickets.create", base | body, by=ALICE)
    assert error.status == 422


async def test_a_title_of_200_characters_is_accepted(desk: Desk) -> None:
    assert len((await desk.open(title="x" * 200))["title"]) == 200


async def test_twenty_concurrent_creates_get_keys_ops_1_to_20_without_gap_or_duplicate(
    desk: Desk,
) -> None:
    await desk.refused("tickets.create", {"type": "nope", "title": "x"}, by=ALICE)  # no number
    tickets = await asyncio.gather(*(desk.open(by=ALICE if i % 2 else BOT) for i in range(20)))
    assert sorted(t["key"] for t in tickets) == sorted(f"OPS-{n}" for n in range(1, 21))
    # numbers are no longer a stream of their own (a sequence hands them out, nothing waits)
    assert await desk.deps.store.read_stream("ticketkeys") == []


async def test_a_sequence_behind_the_log_skips_the_numbers_already_taken(desk: Desk) -> None:
    """After a restore the sequence may be behind the log: a key is never given twice."""
    first = await desk.open(by=ALICE)
    await desk.deps.pool.execute("SELECT setval('tickets.ticket_numbers', 1, false)")
    second = await desk.open(by=ALICE)
    assert first["key"] == "OPS-1"
    assert second["key"] == "OPS-2"
