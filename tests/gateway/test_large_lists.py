"""Lists stay readable whatever their items weigh: about 90 tickets of 20-30 KB, 56 comments of
20 KB and ticket types of ~50 KB each once made the ticket list, the CSV export, the comments,
the audit trail and the type list answer 504 after 10 s for everyone (the reply was over the
bus's message limit and dropped). Each now answers pages that fit, and the cursors reach every
item exactly once."""

from __future__ import annotations

import csv
import io
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from libs.contracts import tickets as contract
from libs.events.contract import ask
from libs.events.envelope import Actor, ActorKind
from tests.gateway.helpers import Member, Team, team_on_desk

TICKETS = 90
COMMENTS = 56
INTERNAL = {5, 17, 30, 44}
"""Which of the comments are internal (staff only)."""
TYPES = 24


def description(n: int) -> str:
    """20,000 characters: 20 KB of ASCII, or 30 KB with every other character two bytes."""
    return ("x" if n % 2 else "xü") * (20_000 // (1 if n % 2 else 2))


def comment_body(n: int) -> str:
    return f"comment {n:02d} " + "c" * 19_980


def as_member(member: Member) -> dict[str, Any]:
    return {"actor": Actor(kind=ActorKind.USER, id=member.id), "role": member.role}


@pytest.fixture(scope="module")
async def team(
    server_urls: tuple[str, str], tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Team]:
    """A desk holding the heavy data, written straight to the tickets service (the HTTP routes
    that write are rate limited per user; what is under test here is reading)."""
    async with team_on_desk(server_urls, tmp_path_factory.mktemp("large-lists")) as made:
        rpc = made.gateway.deps.rpc
        for n in range(TICKETS):
            body = contract.TicketIn(
                type="incident",
                title=f"Heavy {n:02d}",
                description=description(n),
                fields={"service": "api", "impact": "i" * 9_000},
            )
            await ask(rpc, contract.CREATE, body, **as_member(made.alice))
        yield made


async def pages(client: httpx.AsyncClient, path: str, **params: Any) -> list[dict[str, Any]]:
    """Every item of a list, following next_cursor; each page answers at once."""
    items: list[dict[str, Any]] = []
    cursor = None
    for _ in range(500):
        started = time.monotonic()
        query = params | ({"cursor": cursor} if cursor else {})
        answer = await client.get(path, params=query)
        assert answer.status_code == 200, answer.text[:300]
        assert time.monotonic() - started < 5, "a page took as long as a timeout"
        page = answer.json()
        assert page["items"] or page["next_cursor"] is None, "an empty page that goes on"
        items.extend(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return items
    raise AssertionError("the cursors never ended")


@pytest.mark.parametrize("limit", [None, 200])
async def test_the_ticket_list_pages_through_heavy_tickets(team: Team, limit: int | None) -> None:
    params = {} if limit is None else {"limit": limit}
    for member in (team.operator, team.admin, team.alice):
        client = team.client(member)
        first = await client.get("/api/v1/tickets", params=params)
        assert first.status_code == 200, first.text[:300]
        assert first.json()["next_cursor"] is not None  # the page stopped short of the limit
        items = await pages(client, "/api/v1/tickets", **params)
        keys = [t["key"] for t in items]
        assert keys == [f"OPS-{n}" for n in range(TICKETS, 0, -1)]
        assert items[-1]["description"] == description(0)


async def test_the_csv_export_streams_every_heavy_ticket(team: Team) -> None:
    started = time.monotonic()
    answer = await team.client(team.operator).get("/api/v1/tickets/export.csv")
    assert answer.status_code == 200, answer.text[:300]
    assert time.monotonic() - started < 10
    assert answer.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(answer.text)))
    assert [r["key"] for r in rows] == [f"OPS-{n}" for n in range(TICKETS, 0, -1)]
    assert rows[-1]["description"] == description(0)
    assert rows[-2]["description"] == description(1)


async def test_comments_and_the_audit_trail_page_through_heavy_comments(team: Team) -> None:
    key = "OPS-1"
    rpc = team.gateway.deps.rpc
    for n in range(COMMENTS):
        by = team.operator if n in INTERNAL else team.alice
        new = contract.AddCommentIn(key=key, body=comment_body(n), internal=n in INTERNAL)
        await ask(rpc, contract.COMMENT, new, **as_member(by))

    staff = team.client(team.operator)
    comments = await pages(staff, f"/api/v1/tickets/{key}/comments")
    assert [c["body"] for c in comments] == [comment_body(n) for n in range(COMMENTS)]
    trail = await pages(staff, f"/api/v1/tickets/{key}/events")
    assert [e["type"] for e in trail] == ["ticket.created"] + ["ticket.commented"] * COMMENTS
    assert [e["version"] for e in trail] == list(range(1, COMMENTS + 2))

    # the requester's pages skip what is internal, and still reach the end
    alice = team.client(team.alice)
    public = [comment_body(n) for n in range(COMMENTS) if n not in INTERNAL]
    assert [c["body"] for c in await pages(alice, f"/api/v1/tickets/{key}/comments")] == public
    seen = await pages(alice, f"/api/v1/tickets/{key}/events", limit=7)
    assert len(seen) == 1 + len(public)
    assert not any(e["data"].get("internal") for e in seen)


async def test_the_type_list_pages_through_heavy_ticket_types(team: Team) -> None:
    rpc = team.gateway.deps.rpc
    for n in range(TYPES):
        fields = [
            {"key": f"f{i}", "label": "L" * 200, "type": "text", "help": "h" * 1_000}
            for i in range(40)
        ]
        new = contract.TicketTypeIn(key=f"heavy_{n:02d}", name=f"Heavy {n}", fields=fields)
        await ask(rpc, contract.TYPES_CREATE, new, **as_member(team.admin))
    types = await pages(team.client(team.alice), "/api/v1/ticket-types")
    heavy = [t["key"] for t in types if t["key"].startswith("heavy_")]
    assert heavy == [f"heavy_{n:02d}" for n in range(TYPES)]
    assert {"access", "deployment", "incident", "infra"} <= {t["key"] for t in types}


async def test_the_global_log_pages_by_size_as_well_as_by_count(team: Team) -> None:
    admin = team.client(team.admin)
    first = await admin.get("/api/v1/events", params={"limit": 1000})
    assert first.status_code == 200, first.text[:300]
    assert len(first.content) < 2 * 1024 * 1024  # not ~4 MB of heavy tickets in one answer
    assert first.json()["next_cursor"] is not None
    events = await pages(admin, "/api/v1/events", limit=1000, type="ticket.created")
    created = [e["stream_id"] for e in events]
    assert created == [f"ticket-OPS-{n}" for n in range(1, TICKETS + 1)]
