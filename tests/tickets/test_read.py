"""Reading tickets: as of an instant, filtered and paged lists, CSV export, replay equals live."""

from __future__ import annotations

import asyncio
import csv
import io
from datetime import datetime, timedelta
from typing import Any

from libs.events.replay import replay_service
from libs.events.testing import eventually
from services.tickets.app import SERVICE
from tests.tickets.support import ADMIN, ALICE, BOB, OPERATOR, Desk


async def test_as_of_reads_the_ticket_as_it_was_then(desk: Desk) -> None:
    created = await desk.open(priority="low")
    key = created["key"]
    before_creation = datetime.fromisoformat(created["created_at"]) - timedelta(seconds=1)
    await asyncio.sleep(0.01)
    await desk.call("tickets.set_priority", {"key": key, "priority": "urgent"}, by=OPERATOR)
    in_progress = await desk.move(key, "in_progress")
    await asyncio.sleep(0.01)
    await desk.request_approval(key)
    await desk.call("tickets.add_tag", {"key": key, "tag": "later"}, by=OPERATOR)

    then = await desk.call(
        "tickets.get", {"key": key, "as_of": in_progress["updated_at"]}, by=ALICE
    )
    assert (then["status"], then["priority"], then["tags"], then["locked"]) == (
        "in_progress",
        "urgent",
        [],
        False,
    )
    assert then == in_progress
    first = await desk.call("tickets.get", {"key": key, "as_of": created["created_at"]}, by=ALICE)
    assert first == created
    now = await desk.call("tickets.get", {"key": key, "as_of": "2999-01-01T00:00:00Z"}, by=ALICE)
    assert (now["locked"], now["tags"]) == (True, ["later"])
    gone = await desk.refused(
        "tickets.get", {"key": key, "as_of": before_creation.isoformat()}, by=ALICE
    )
    assert (gone.status, gone.code) == (404, "NOT_FOUND")
    naive = await desk.refused("tickets.get", {"key": key, "as_of": "2025-01-01T00:00"}, by=ALICE)
    assert naive.status == 422


async def test_list_filters_combine(desk: Desk) -> None:
    db = (await desk.open(title="Database slow", priority="high"))["key"]
    api = (await desk.open(title="API errors", description="5xx from the edge"))["key"]
    bobs = (await desk.open(by=BOB, title="Database backup"))["key"]
    await desk.call("tickets.add_tag", {"key": db, "tag": "db"}, by=OPERATOR)
    await desk.call("tickets.assign", {"key": api, "assignee_id": OPERATOR.id}, by=OPERATOR)
    await desk.move(bobs, "in_progress")

    async def keys(by: Any = OPERATOR, **filters: Any) -> list[str]:
        page = await desk.call("tickets.list", filters, by=by)
        return [t["key"] for t in page["items"]]

    assert await keys(q="database") == [bobs, db]
    assert await keys(q="5XX") == [api]
    assert await keys(q=api.lower()) == [api]
    assert await keys(q="database", by=ALICE) == [db]
    assert await keys(status="in_progress") == [bobs]
    assert await keys(priority="high") == [db]
    assert await keys(tag="DB") == [db]
    assert await keys(assignee=OPERATOR.id) == [api]
    assert await keys(type="incident", status="open") == [api, db]
    assert await keys(type="access") == []


async def test_search_text_is_not_a_like_pattern(desk: Desk) -> None:
    await desk.open(title="100% CPU")
    await desk.open(title="1000 errors")
    page = await desk.call("tickets.list", {"q": "100%"}, by=OPERATOR)
    assert [t["title"] for t in page["items"]] == ["100% CPU"]
    underscore = await desk.call("tickets.list", {"q": "_"}, by=OPERATOR)
    assert underscore["items"] == []


async def test_pages_follow_the_cursor_newest_first_without_overlap(desk: Desk) -> None:
    for _ in range(7):
        await desk.open()
    seen: list[str] = []
    cursor = None
    while True:
        body: dict[str, Any] = {"limit": 3} | ({"cursor": cursor} if cursor else {})
        page = await desk.call("tickets.list", body, by=OPERATOR)
        seen.extend(t["key"] for t in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [f"OPS-{n}" for n in range(7, 0, -1)]
    bad = await desk.refused("tickets.list", {"cursor": "not-a-cursor"}, by=OPERATOR)
    assert (bad.status, bad.code) == (422, "INVALID_CURSOR")


async def test_csv_export_holds_the_filtered_list_with_formulas_defused(desk: Desk) -> None:
    await desk.open(title='=HYPERLINK("http://evil")', description="+1, -2\nnext line")
    await desk.open(title="@SUM(A1)", priority="urgent")
    await desk.open(title="plain, with comma")
    exported = await desk.call("tickets.export", {}, by=OPERATOR)
    rows = list(csv.DictReader(io.StringIO(exported["csv"])))
    assert [r["title"] for r in rows] == [
        "plain, with comma",
        "'@SUM(A1)",
        '\'=HYPERLINK("http://evil")',
    ]
    assert rows[2]["description"] == "'+1, -2\nnext line"
    assert rows[0]["key"] == "OPS-3" and rows[0]["status"] == "open"
    urgent = await desk.call("tickets.export", {"priority": "urgent"}, by=OPERATOR)
    assert [r["key"] for r in csv.DictReader(io.StringIO(urgent["csv"]))] == ["OPS-2"]


async def snapshot(desk: Desk) -> dict[str, list[dict[str, Any]]]:
    tables = {
        "tickets": "key",
        "comments": "id",
        "types": "key",
        "type_versions": "key, version",
        "people": "user_id",
    }
    result = {}
    for table, order in tables.items():
        rows = await desk.deps.pool.fetch(f"SELECT * FROM tickets.{table} ORDER BY {order}")
        result[table] = [dict(r) for r in rows]
    return result


async def test_replaying_the_projection_from_the_log_equals_the_live_one(desk: Desk) -> None:
    await desk.call(
        "types.create",
        {
            "key": "db_change",
            "name": "DB",
            "fields": [{"key": "db", "label": "DB", "type": "text"}],
        },
        by=ADMIN,
    )
    await desk.call("types.update", {"key": "db_change", "fields": []}, by=ADMIN)
    for i in range(6):
        key = (await desk.open(by=ALICE if i % 2 else BOB))["key"]
        await desk.call("tickets.add_tag", {"key": key, "tag": f"t{i % 3}"}, by=OPERATOR)
        await desk.call(
            "tickets.comment", {"key": key, "body": "hi", "internal": i % 2 == 0}, by=OPERATOR
        )
        if i % 3 == 0:
            await desk.request_approval(key)
        else:
            await desk.move(key, "resolved")
    await desk.request_approval("OPS-6", "late")  # appended by another writer: projected live

    async def caught_up() -> bool:
        page = await desk.call("tickets.list", by=OPERATOR)
        versions = [
            await desk.deps.store.stream_version(f"ticket-{t['key']}") for t in page["items"]
        ]
        return [t["version"] for t in page["items"]] == versions

    await eventually(caught_up)
    live = await snapshot(desk)
    applied = await replay_service(SERVICE, desk.deps)
    assert applied > 0
    assert await snapshot(desk) == live
