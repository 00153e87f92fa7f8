"""Tickets through HTTP, as a user of the API notices them: field validation, custom types,
reading the past, the approval lock on every path that changes a status, who sees what,
CSV export, API tokens, and bad bodies answered in the error shape."""

from __future__ import annotations

import base64
import csv
import io
import itertools
import json
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from libs.events.testing import eventually
from tests.gateway.helpers import Member, Team, team_on_desk

_serial = itertools.count(1)


def unique(prefix: str) -> str:
    return f"{prefix}{next(_serial)}"


@pytest.fixture(scope="module")
async def team(
    server_urls: tuple[str, str], tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Team]:
    """One deployment for the module; every test opens its own tickets."""
    async with team_on_desk(server_urls, tmp_path_factory.mktemp("ticket-http")) as made:
        yield made


def error_of(response: httpx.Response, status: int) -> dict[str, Any]:
    """The error of a refused call, checked to have the contract's shape."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}, body
    error: dict[str, Any] = body["error"]
    assert isinstance(error["code"], str) and isinstance(error["message"], str), error
    return error


async def get_ticket(team: Team, key: str, by: Member) -> dict[str, Any]:
    response = await team.client(by).get(f"/api/v1/tickets/{key}")
    assert response.status_code == 200, response.text
    ticket: dict[str, Any] = response.json()
    return ticket


async def trail(team: Team, key: str, by: Member) -> list[dict[str, Any]]:
    response = await team.client(by).get(f"/api/v1/tickets/{key}/events")
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def until_locked(team: Team, key: str, locked: bool) -> dict[str, Any]:
    """The ticket once GET shows it (un)locked: the lock is appended by another service, so the
    read model follows it from the bus."""

    async def read() -> dict[str, Any]:
        return await get_ticket(team, key, team.operator)

    return await eventually(read, until=lambda t: t["locked"] is locked)


# creating tickets and types


async def test_a_ticket_with_bad_fields_is_refused_naming_every_bad_field(team: Team) -> None:
    response = await team.client(team.alice).post(
        "/api/v1/tickets",
        json={
            "type": "incident",
            "title": "Checkout is slow",
            "fields": {"severity": "sev9", "colour": "red"},  # and the required service missing
        },
    )
    error = error_of(response, 422)
    assert error["code"] == "INVALID_FIELDS"
    assert error["details"] == {
        "service": "is required",
        "severity": "must be one of sev1, sev2, sev3, sev4",
        "colour": "unknown field",
    }


async def test_a_ticket_of_an_unknown_type_is_refused_with_422(team: Team) -> None:
    response = await team.client(team.alice).post(
        "/api/v1/tickets", json={"type": "no_such_type", "title": "Help", "fields": {}}
    )
    error = error_of(response, 422)
    assert error["code"] == "UNKNOWN_TYPE"
    assert error["details"] == {"type": "no_such_type"}


async def test_a_type_an_admin_defines_is_usable_at_once(team: Team) -> None:
    key = unique("laptop_request_")
    fields = [
        {
            "key": "laptop",
            "label": "Laptop",
            "type": "select",
            "options": ["mac", "linux"],
            "required": True,
        }
    ]
    defined = await team.client(team.admin).post(
        "/api/v1/ticket-types", json={"key": key, "name": "Laptop request", "fields": fields}
    )
    assert defined.status_code == 201, defined.text
    assert defined.json()["version"] == 1
    listed = (await team.client(team.alice).get("/api/v1/ticket-types")).json()["items"]
    assert key in {t["key"] for t in listed}
    alice = team.client(team.alice)
    created = await alice.post(
        "/api/v1/tickets", json={"type": key, "title": "New laptop", "fields": {"laptop": "mac"}}
    )
    assert created.status_code == 201, created.text
    assert created.json()["type"] == key
    assert created.json()["type_version"] == 1
    assert created.json()["fields"] == {"laptop": "mac"}
    missing = await alice.post(
        "/api/v1/tickets", json={"type": key, "title": "New laptop", "fields": {}}
    )
    assert error_of(missing, 422)["details"] == {"laptop": "is required"}


# reading the past


async def test_a_ticket_read_as_of_a_past_time_shows_it_as_it_was_then(team: Team) -> None:
    opened = await team.open_ticket()
    key = opened["key"]
    started = await team.move(key, "in_progress")
    created_at = datetime.fromisoformat(opened["created_at"])
    changed_at = datetime.fromisoformat(started["updated_at"])
    assert created_at < changed_at
    alice = team.client(team.alice)

    async def as_of(moment: datetime) -> httpx.Response:
        return await alice.get(f"/api/v1/tickets/{key}", params={"as_of": moment.isoformat()})

    before_the_change = await as_of(created_at + (changed_at - created_at) / 2)
    assert before_the_change.status_code == 200, before_the_change.text
    assert before_the_change.json()["status"] == "open"
    assert (await as_of(changed_at)).json()["status"] == "in_progress"
    assert (await get_ticket(team, key, team.alice))["status"] == "in_progress"
    before_creation = await as_of(created_at - timedelta(milliseconds=1))
    assert error_of(before_creation, 404)["code"] == "NOT_FOUND"
    naive = await alice.get(f"/api/v1/tickets/{key}", params={"as_of": "2025-01-01T00:00:00"})
    assert error_of(naive, 422)["code"] == "VALIDATION_ERROR"


# the approval lock, on every path that changes a status


async def test_the_status_route_is_refused_while_an_approval_is_pending_then_goes_through(
    team: Team,
) -> None:
    key = (await team.open_ticket())["key"]
    await team.request_approval(key, "apr-status")
    operator = team.client(team.operator)
    refused = await operator.post(f"/api/v1/tickets/{key}/status", json={"status": "resolved"})
    error = error_of(refused, 409)
    assert error["code"] == "PENDING_APPROVAL"
    assert error["details"] == {"approval_id": "apr-status", "action": "resolve"}

    locked = await until_locked(team, key, True)
    assert locked["status"] == "open"
    assert locked["pending_approval"]["approval_id"] == "apr-status"
    assert locked["pending_approval"]["action"] == "resolve"
    for who in (team.operator, team.alice):  # the refusal is in the trail its requester reads
        last = (await trail(team, key, who))[-1]
        assert last["type"] == "ticket.change_refused"
        assert last["actor"] == {"kind": "user", "id": team.operator.id}
        assert last["data"] == {
            "attempted": "resolved",
            "reason": "PENDING_APPROVAL",
            "approval_id": "apr-status",
            "by": team.operator.id,
            "via": "change_status",
        }

    await team.decide_approval(key, "apr-status")
    resolved = await operator.post(f"/api/v1/tickets/{key}/status", json={"status": "resolved"})
    assert resolved.status_code == 200, resolved.text
    assert resolved.json()["status"] == "resolved"
    unlocked = await until_locked(team, key, False)
    assert unlocked["pending_approval"] is None
    assert unlocked["status"] == "resolved"


async def test_bulk_close_refuses_the_locked_ticket_and_closes_the_others(team: Team) -> None:
    free = (await team.open_ticket())["key"]
    locked = (await team.open_ticket())["key"]
    await team.request_approval(locked, "apr-bulk")
    operator = team.client(team.operator)
    response = await operator.post(
        "/api/v1/tickets/bulk", json={"keys": [free, locked], "op": "close"}
    )
    assert response.status_code == 200, response.text
    results = {r["key"]: r for r in response.json()["results"]}
    assert list(results) == [free, locked]
    assert (results[free]["ok"], results[free]["status"]) == (True, 200)
    assert (results[locked]["ok"], results[locked]["status"]) == (False, 409)
    assert results[locked]["error"]["code"] == "PENDING_APPROVAL"
    assert (await get_ticket(team, free, team.operator))["status"] == "closed"
    assert (await until_locked(team, locked, True))["status"] == "open"
    last = (await trail(team, locked, team.operator))[-1]
    assert last["type"] == "ticket.change_refused"
    assert last["data"]["via"] == "bulk_close"

    await team.decide_approval(locked, "apr-bulk")
    again = await operator.post("/api/v1/tickets/bulk", json={"keys": [locked], "op": "close"})
    assert again.json()["results"][0]["ok"] is True, again.text
    assert (await get_ticket(team, locked, team.operator))["status"] == "closed"


async def test_a_requester_cannot_reopen_a_locked_ticket_until_the_approval_is_decided(
    team: Team,
) -> None:
    key = (await team.open_ticket())["key"]
    await team.move(key, "resolved")
    await team.request_approval(key, "apr-reopen")
    alice = team.client(team.alice)
    refused = await alice.post(f"/api/v1/tickets/{key}/status", json={"status": "open"})
    assert error_of(refused, 409)["code"] == "PENDING_APPROVAL"
    last = (await trail(team, key, team.alice))[-1]
    assert last["type"] == "ticket.change_refused"
    assert last["data"]["via"] == "reopen"
    assert last["data"]["by"] == team.alice.id
    assert (await until_locked(team, key, True))["status"] == "resolved"

    await team.decide_approval(key, "apr-reopen")
    reopened = await alice.post(f"/api/v1/tickets/{key}/status", json={"status": "open"})
    assert reopened.status_code == 200, reopened.text
    assert reopened.json()["status"] == "open"


async def test_a_transition_the_table_does_not_allow_is_409_invalid_transition(
    team: Team,
) -> None:
    key = (await team.open_ticket())["key"]
    operator = team.client(team.operator)
    same = await operator.post(f"/api/v1/tickets/{key}/status", json={"status": "open"})
    assert error_of(same, 409)["code"] == "INVALID_TRANSITION"
    await team.move(key, "resolved")
    back = await operator.post(f"/api/v1/tickets/{key}/status", json={"status": "in_progress"})
    error = error_of(back, 409)
    assert error["code"] == "INVALID_TRANSITION"
    assert error["details"] == {
        "from": "resolved",
        "to": "in_progress",
        "allowed": ["closed", "open"],
    }
    assert (await get_ticket(team, key, team.alice))["status"] == "resolved"


# who sees what


async def test_requesters_list_only_their_own_tickets_and_get_404_for_another_s(
    team: Team,
) -> None:
    word = unique("printer")
    mine = (await team.open_ticket(team.alice, title=f"{word} jammed"))["key"]
    theirs = (await team.open_ticket(team.bob, title=f"{word} on fire"))["key"]

    async def listed(by: Member) -> list[dict[str, Any]]:
        response = await team.client(by).get("/api/v1/tickets", params={"q": word})
        assert response.status_code == 200, response.text
        items: list[dict[str, Any]] = response.json()["items"]
        return items

    assert [t["key"] for t in await listed(team.alice)] == [mine]
    assert [t["key"] for t in await listed(team.bob)] == [theirs]
    assert {t["key"] for t in await listed(team.operator)} == {mine, theirs}
    everything_alice_sees = (await team.client(team.alice).get("/api/v1/tickets")).json()
    assert {t["requester_id"] for t in everything_alice_sees["items"]} == {team.alice.id}
    hidden = await team.client(team.bob).get(f"/api/v1/tickets/{mine}")
    assert error_of(hidden, 404)["code"] == "NOT_FOUND"


async def test_internal_comments_are_hidden_from_the_requester_in_comments_and_events(
    team: Team,
) -> None:
    key = (await team.open_ticket())["key"]
    operator, alice = team.client(team.operator), team.client(team.alice)
    for body, internal in (("We are on it", False), ("Root cause: the cron job", True)):
        posted = await operator.post(
            f"/api/v1/tickets/{key}/comments", json={"body": body, "internal": internal}
        )
        assert posted.status_code == 201, posted.text
    assert (
        await alice.post(f"/api/v1/tickets/{key}/comments", json={"body": "Thanks"})
    ).status_code == 201

    async def comment_bodies(client: httpx.AsyncClient) -> list[str]:
        response = await client.get(f"/api/v1/tickets/{key}/comments")
        assert response.status_code == 200, response.text
        return [c["body"] for c in response.json()["items"]]

    assert await comment_bodies(alice) == ["We are on it", "Thanks"]
    assert await comment_bodies(operator) == ["We are on it", "Root cause: the cron job", "Thanks"]

    def commented(items: list[dict[str, Any]]) -> list[str]:
        return [e["data"]["body"] for e in items if e["type"] == "ticket.commented"]

    assert commented(await trail(team, key, team.alice)) == ["We are on it", "Thanks"]
    assert commented(await trail(team, key, team.operator)) == [
        "We are on it",
        "Root cause: the cron job",
        "Thanks",
    ]


# CSV export


CSV_HEADER = [
    "key",
    "type",
    "title",
    "status",
    "priority",
    "requester_id",
    "assignee_id",
    "tags",
    "locked",
    "created_at",
    "updated_at",
    "description",
]


async def test_the_csv_export_has_the_filtered_rows_and_defuses_formulas(team: Team) -> None:
    tag = unique("export-")
    formula = '=HYPERLINK("http://evil.example","click")'
    dangerous = (await team.open_ticket(title=formula))["key"]
    plain = (await team.open_ticket(title="Printer jammed"))["key"]
    await team.open_ticket(title="Not tagged")
    operator = team.client(team.operator)
    for key in (dangerous, plain):
        tagged = await operator.post(f"/api/v1/tickets/{key}/tags", json={"tag": tag})
        assert tagged.status_code == 200, tagged.text

    response = await operator.get("/api/v1/tickets/export.csv", params={"tag": tag})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(response.text)))
    assert rows[0] == CSV_HEADER
    titles = {row[0]: row[2] for row in rows[1:]}
    assert titles == {dangerous: "'" + formula, plain: "Printer jammed"}
    for row in rows[1:]:
        assert row[CSV_HEADER.index("tags")] == tag

    someone_else = await team.client(team.bob).get(
        "/api/v1/tickets/export.csv", params={"tag": tag}
    )
    assert list(csv.reader(io.StringIO(someone_else.text))) == [CSV_HEADER]


# API tokens


async def test_an_api_token_creates_a_ticket_owned_by_its_user(team: Team) -> None:
    made = await team.client(team.alice).post(
        "/api/v1/tokens", json={"name": unique("script-"), "scopes": ["api"]}
    )
    assert made.status_code == 201, made.text
    token = made.json()
    script = team.client()
    created = await script.post(
        "/api/v1/tickets",
        headers={"Authorization": f"Bearer {token['token']}"},
        json={"type": "incident", "title": "Nightly backup failed", "fields": {"service": "db"}},
    )
    assert created.status_code == 201, created.text
    key = created.json()["key"]
    assert created.json()["requester_id"] == team.alice.id
    assert (await get_ticket(team, key, team.alice))["requester_id"] == team.alice.id
    first = (await trail(team, key, team.operator))[0]
    assert first["type"] == "ticket.created"
    assert first["actor"] == {"kind": "token", "id": token["id"]}


async def test_a_token_without_the_api_scope_cannot_create_tickets(team: Team) -> None:
    made = await team.client(team.alice).post(
        "/api/v1/tokens", json={"name": unique("alerts-"), "scopes": ["ingest"]}
    )
    assert made.status_code == 201, made.text
    refused = await team.client().post(
        "/api/v1/tickets",
        headers={"Authorization": f"Bearer {made.json()['token']}"},
        json={"type": "incident", "title": "x", "fields": {"service": "db"}},
    )
    assert error_of(refused, 403)["code"] == "FORBIDDEN"


# bad bodies


BAD_BODIES = {
    "not JSON": b'{"type": "incident", "title": ',
    "a JSON list": b"[]",
    "a JSON string": b'"incident"',
    "empty": b"",
    "a title that is a number": b'{"type": "incident", "title": 5, "fields": {}}',
    "fields that are a list": b'{"type": "incident", "title": "x", "fields": []}',
    "an unknown key": b'{"type": "incident", "title": "x", "fields": {}, "owner": "me"}',
    "a blank title": b'{"type": "incident", "title": "   ", "fields": {"service": "db"}}',
    "a NUL in the title": b'{"type": "incident", "title": "a\\u0000b", "fields": {}}',
    "a bad priority": b'{"type": "incident", "title": "x", "priority": "asap", "fields": {}}',
    "deeply nested fields": b'{"type": "incident", "title": "x", "fields": {"service": '
    + b'{"a": ' * 200
    + b"1"
    + b"}" * 200
    + b"}}",
}


@pytest.mark.parametrize("content", list(BAD_BODIES.values()), ids=list(BAD_BODIES))
async def test_a_malformed_ticket_body_is_422_in_the_error_shape_never_500(
    team: Team, content: bytes
) -> None:
    response = await team.client(team.alice).post(
        "/api/v1/tickets", content=content, headers={"content-type": "application/json"}
    )
    error = error_of(response, 422)
    assert error["code"] in {"VALIDATION_ERROR", "INVALID_FIELDS"}, error


@pytest.mark.parametrize(
    ("path", "content"),
    [
        ("status", b'{"status": "done"}'),
        ("status", b"{"),
        ("comments", b'{"body": ""}'),
        ("rating", b'{"score": 11}'),
        ("tags", b'{"tag": "!!!"}'),
    ],
)
async def test_a_malformed_body_on_a_ticket_route_is_422_never_500(
    team: Team, path: str, content: bytes
) -> None:
    key = (await team.open_ticket())["key"]
    response = await team.client(team.operator).post(
        f"/api/v1/tickets/{key}/{path}",
        content=content,
        headers={"content-type": "application/json"},
    )
    error_of(response, 422)


def cursor_before(number: int) -> str:
    """A cursor shaped like the ones GET /tickets gives out (crafted here, not given out)."""
    return base64.urlsafe_b64encode(json.dumps({"before": number}).encode()).decode()


async def test_a_crafted_cursor_out_of_range_is_422_never_500(team: Team) -> None:
    response = await team.client(team.alice).get(
        "/api/v1/tickets", params={"cursor": cursor_before(10**30)}
    )
    assert error_of(response, 422)["code"] == "INVALID_CURSOR"
