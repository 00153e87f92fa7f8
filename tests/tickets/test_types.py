"""Ticket types: built-ins from the start, admin-defined types usable at once, schema versions."""

from __future__ import annotations

import asyncio
from typing import Any

from services.tickets.fields import TicketTypeSchema, validate_values
from services.tickets.handlers import TicketCommands
from tests.tickets.support import ADMIN, ALICE, BOT, OPERATOR, Desk

DB_CHANGE: dict[str, Any] = {
    "key": "db_change",
    "name": "Database change",
    "fields": [
        {"key": "database", "label": "Database", "type": "text", "required": True},
        {"key": "risk", "label": "Risk", "type": "select", "options": ["low", "high"]},
    ],
}


async def test_builtin_types_exist_from_the_start(desk: Desk) -> None:
    page = await desk.call("types.list", by=ALICE)
    assert [t["key"] for t in page["items"]] == ["access", "deployment", "incident", "infra"]
    assert all(t["builtin"] and t["version"] == 1 for t in page["items"])
    deployment = await desk.call("types.get", {"key": "deployment"}, by=ALICE)
    assert set(deployment) == {"key", "name", "version", "builtin", "fields"}
    assert [f["key"] for f in deployment["fields"]][:3] == ["service", "environment", "version"]


async def test_builtin_types_are_defined_once_when_replicas_seed_at_the_same_time(
    desk: Desk,
) -> None:
    await asyncio.gather(*(TicketCommands(desk.deps).seed_builtin_types() for _ in range(5)))
    rows = await desk.deps.pool.fetch(
        "SELECT stream_id, count(*) AS n FROM eventstore.events "
        "WHERE stream_id LIKE 'tickettype-%' GROUP BY stream_id"
    )
    assert {r["stream_id"]: r["n"] for r in rows} == {
        f"tickettype-{key}": 1 for key in ("access", "deployment", "incident", "infra")
    }


async def test_a_type_an_admin_defines_is_usable_at_once(desk: Desk) -> None:
    created = await desk.call("types.create", DB_CHANGE, by=ADMIN)
    assert (created["key"], created["version"], created["builtin"]) == ("db_change", 1, False)
    ticket = await desk.call(
        "tickets.create",
        {"type": "db_change", "title": "add index", "fields": {"database": "orders"}},
        by=ALICE,
    )
    assert (ticket["type"], ticket["type_version"]) == ("db_change", 1)
    assert ticket["fields"] == {"database": "orders"}


async def test_only_admins_define_or_change_types(desk: Desk) -> None:
    for who in (OPERATOR, ALICE, BOT):
        assert (await desk.refused("types.create", DB_CHANGE, by=who)).status == 403
        update = {"key": "incident", "fields": []}
        assert (await desk.refused("types.update", update, by=who)).status == 403


async def test_a_taken_type_key_is_refused(desk: Desk) -> None:
    await desk.call("types.create", DB_CHANGE, by=ADMIN)
    again = await desk.refused("types.create", DB_CHANGE, by=ADMIN)
    builtin = await desk.refused("types.create", DB_CHANGE | {"key": "incident"}, by=ADMIN)
    assert (again.status, again.code) == (409, "TYPE_EXISTS")
    assert (builtin.status, builtin.code) == (409, "TYPE_EXISTS")


async def test_an_invalid_field_schema_is_refused_with_422(desk: Desk) -> None:
    bad_fields = [
        [{"key": "env", "label": "Env", "type": "select"}],  # select without options
        [{"key": "a", "label": "A", "type": "text"}, {"key": "a", "label": "A", "type": "text"}],
        [{"key": "Bad Key", "label": "x", "type": "text"}],
        [{"key": "a", "label": "A", "type": "colour"}],
    ]
    for fields in bad_fields:
        error = await desk.refused("types.create", DB_CHANGE | {"fields": fields}, by=ADMIN)
        assert error.status == 422, fields
    unknown = await desk.refused("types.create", DB_CHANGE | {"owner": "me"}, by=ADMIN)
    assert unknown.status == 422
    missing = await desk.refused("types.get", {"key": "nope"}, by=ALICE)
    assert (missing.status, missing.code) == (404, "NOT_FOUND")


async def test_a_ticket_keeps_the_schema_version_it_was_created_under(desk: Desk) -> None:
    await desk.call("types.create", DB_CHANGE, by=ADMIN)
    body = {"type": "db_change", "title": "old", "fields": {"database": "orders"}}
    old = await desk.call("tickets.create", body, by=ALICE)

    revised = DB_CHANGE["fields"] + [
        {"key": "ticket_url", "label": "Change ticket", "type": "url", "required": True}
    ]
    update = await desk.call(
        "types.update", {"key": "db_change", "name": "DB change", "fields": revised}, by=ADMIN
    )
    assert (update["version"], update["name"]) == (2, "DB change")

    refused = await desk.refused("tickets.create", body, by=ALICE)
    assert (refused.code, refused.details) == ("INVALID_FIELDS", {"ticket_url": "is required"})
    new = await desk.call(
        "tickets.create",
        body | {"fields": {"database": "orders", "ticket_url": "https://change/1"}},
        by=ALICE,
    )
    assert (new["type_version"], old["type_version"]) == (2, 1)

    current = await desk.call("tickets.get", {"key": old["key"]}, by=ALICE)
    assert current["type_version"] == 1
    v1 = await desk.call("types.get", {"key": "db_change", "version": 1}, by=ALICE)
    schema = TicketTypeSchema.model_validate({"fields": v1["fields"]})
    assert validate_values(schema, current["fields"]) == current["fields"]


async def test_updating_an_unknown_type_is_not_found(desk: Desk) -> None:
    error = await desk.refused("types.update", {"key": "nope", "fields": []}, by=ADMIN)
    assert (error.status, error.code) == (404, "NOT_FOUND")
