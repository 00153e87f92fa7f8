"""Who may see and do what: isolation, internal comments, staff-only changes, tags, ratings."""

from __future__ import annotations

from typing import Any

import pytest

from libs.events.catalog.people import UserRoleChanged
from libs.events.envelope import Actor, ActorKind, Metadata
from libs.events.testing import eventually
from tests.tickets.support import ADMIN, ALICE, BOB, BOT, OPERATOR, Desk, Who

ON_A_TICKET: list[tuple[str, dict[str, Any]]] = [
    ("tickets.get", {}),
    ("tickets.get", {"as_of": "2100-01-01T00:00:00Z"}),
    ("tickets.change_status", {"status": "open"}),
    ("tickets.assign", {"assignee_id": "u-oper"}),
    ("tickets.set_priority", {"priority": "high"}),
    ("tickets.add_tag", {"tag": "mine"}),
    ("tickets.remove_tag", {"tag": "mine"}),
    ("tickets.comment", {"body": "hello"}),
    ("tickets.comments", {}),
    ("tickets.relate", {"relation": "related", "target": "OPS-2"}),
    ("tickets.rate", {"score": 5}),
    ("tickets.events", {}),
]


@pytest.mark.parametrize(("method", "body"), ON_A_TICKET)
async def test_another_requesters_ticket_is_not_found_on_every_method(
    desk: Desk, method: str, body: dict[str, Any]
) -> None:
    key = (await desk.open(by=ALICE))["key"]
    await desk.open(by=BOB)
    error = await desk.refused(method, {"key": key, **body}, by=BOB)
    assert (error.status, error.code) == (404, "NOT_FOUND")


async def test_requesters_list_and_export_only_their_own_tickets(desk: Desk) -> None:
    mine = (await desk.open(by=ALICE))["key"]
    theirs = (await desk.open(by=BOB))["key"]
    alice = await desk.call("tickets.list", by=ALICE)
    staff = await desk.call("tickets.list", by=OPERATOR)
    assert [t["key"] for t in alice["items"]] == [mine]
    assert [t["key"] for t in staff["items"]] == [theirs, mine]
    csv = (await desk.call("tickets.export", by=ALICE))["csv"]
    assert mine in csv and theirs not in csv


async def test_internal_comments_are_hidden_from_requesters(desk: Desk) -> None:
    key = (await desk.open(by=ALICE))["key"]
    public = await desk.call("tickets.comment", {"key": key, "body": "on it"}, by=OPERATOR)
    await desk.call(
        "tickets.comment",
        {"key": key, "body": "root cause: bad deploy", "internal": True},
        by=OPERATOR,
    )
    assert set(public) == {"id", "author_id", "body", "internal", "created_at"}
    assert (public["author_id"], public["internal"]) == (OPERATOR.id, False)

    seen = await desk.call("tickets.comments", {"key": key}, by=ALICE)
    assert [c["body"] for c in seen["items"]] == ["on it"]
    staff = await desk.call("tickets.comments", {"key": key}, by=OPERATOR)
    assert [c["body"] for c in staff["items"]] == ["on it", "root cause: bad deploy"]

    trail = (await desk.call("tickets.events", {"key": key}, by=ALICE))["items"]
    assert "root cause" not in str(trail)
    assert [e["type"] for e in trail] == ["ticket.created", "ticket.commented"]
    assert len(await desk.event_types(key, by=OPERATOR)) == 3


async def test_only_staff_write_internal_comments(desk: Desk) -> None:
    key = (await desk.open(by=ALICE))["key"]
    error = await desk.refused(
        "tickets.comment", {"key": key, "body": "x", "internal": True}, by=ALICE
    )
    assert (error.status, error.code) == (403, "FORBIDDEN")
    blank = await desk.refused("tickets.comment", {"key": key, "body": "   "}, by=ALICE)
    assert blank.status == 422


async def test_assignment_is_staff_only_and_to_staff_only(desk: Desk) -> None:
    key = (await desk.open(by=ALICE))["key"]
    ticket = await desk.call("tickets.assign", {"key": key, "assignee_id": OPERATOR.id}, by=ADMIN)
    assert ticket["assignee_id"] == OPERATOR.id
    by_requester = await desk.refused(
        "tickets.assign", {"key": key, "assignee_id": OPERATOR.id}, by=ALICE
    )
    assert by_requester.status == 403
    for assignee in (BOB.id, "u-nobody"):
        error = await desk.refused("tickets.assign", {"key": key, "assignee_id": assignee}, by=BOT)
        assert (error.status, error.code) == (422, "INVALID_ASSIGNEE")


async def test_a_promoted_user_becomes_assignable(desk: Desk) -> None:
    key = (await desk.open(by=ALICE))["key"]
    event = UserRoleChanged(user_id=BOB.id, role="operator", previous_role="requester")
    meta = Metadata(actor=Actor(kind=ActorKind.USER, id=ADMIN.id), service="gateway")
    await desk.deps.store.append(f"user-{BOB.id}", [event], expected_version=1, metadata=meta)

    async def assign() -> Any:
        try:
            return await desk.call("tickets.assign", {"key": key, "assignee_id": BOB.id}, by=ADMIN)
        except Exception:
            return None

    assert (await eventually(assign))["assignee_id"] == BOB.id


async def test_priority_is_changed_by_staff_only(desk: Desk) -> None:
    key = (await desk.open(by=ALICE))["key"]
    error = await desk.refused("tickets.set_priority", {"key": key, "priority": "low"}, by=ALICE)
    assert error.status == 403
    ticket = await desk.call("tickets.set_priority", {"key": key, "priority": "low"}, by=OPERATOR)
    assert (ticket["priority"], ticket["version"]) == ("low", 2)


async def test_tags_are_normalised_added_once_and_removed(desk: Desk) -> None:
    key = (await desk.open(by=ALICE))["key"]
    await desk.call("tickets.add_tag", {"key": key, "tag": "Needs Review"}, by=ALICE)
    ticket = await desk.call("tickets.add_tag", {"key": key, "tag": "needs-review"}, by=OPERATOR)
    assert (ticket["tags"], ticket["version"]) == (["needs-review"], 2)
    ticket = await desk.call("tickets.remove_tag", {"key": key, "tag": "NEEDS review"}, by=ALICE)
    assert ticket["tags"] == []
    bad = await desk.refused("tickets.add_tag", {"key": key, "tag": "!!!"}, by=ALICE)
    assert (bad.status, bad.code) == (422, "INVALID_TAG")


async def test_relations_need_an_existing_visible_target_other_than_itself(desk: Desk) -> None:
    first = (await desk.open(by=ALICE))["key"]
    second = (await desk.open(by=ALICE))["key"]
    bobs = (await desk.open(by=BOB))["key"]
    ticket = await desk.call(
        "tickets.relate", {"key": first, "relation": "blocks", "target": second}, by=ALICE
    )
    assert ticket["relations"] == [{"relation": "blocks", "key": second}]
    for target in (first, "OPS-404", bobs):
        error = await desk.refused(
            "tickets.relate", {"key": first, "relation": "related", "target": target}, by=ALICE
        )
        assert (error.status, error.code) == (422, "INVALID_RELATION"), target
    staff = await desk.call(
        "tickets.relate", {"key": first, "relation": "duplicate", "target": bobs}, by=OPERATOR
    )
    assert len(staff["relations"]) == 2


async def test_only_the_requester_rates_a_resolved_or_closed_ticket_once(desk: Desk) -> None:
    key = (await desk.open(by=ALICE))["key"]
    early = await desk.refused("tickets.rate", {"key": key, "score": 5}, by=ALICE)
    assert (early.status, early.code) == (409, "NOT_RESOLVED")
    await desk.move(key, "resolved")
    staff = await desk.refused("tickets.rate", {"key": key, "score": 5}, by=OPERATOR)
    assert (staff.status, staff.code) == (403, "FORBIDDEN")
    out_of_range = await desk.refused("tickets.rate", {"key": key, "score": 6}, by=ALICE)
    assert out_of_range.status == 422
    ticket = await desk.call("tickets.rate", {"key": key, "score": 4, "comment": "quick"}, by=ALICE)
    assert ticket["rating"] == {"score": 4, "comment": "quick"}
    again = await desk.refused("tickets.rate", {"key": key, "score": 1}, by=ALICE)
    assert (again.status, again.code) == (409, "ALREADY_RATED")


async def test_bulk_is_for_staff_and_assign_needs_a_staff_assignee(desk: Desk) -> None:
    key = (await desk.open(by=ALICE))["key"]
    denied = await desk.refused("tickets.bulk", {"keys": [key], "op": "close"}, by=ALICE)
    assert denied.status == 403
    missing = await desk.refused("tickets.bulk", {"keys": [key], "op": "assign"}, by=OPERATOR)
    assert missing.status == 422
    wrong = await desk.refused(
        "tickets.bulk", {"keys": [key], "op": "assign", "assignee_id": BOB.id}, by=OPERATOR
    )
    assert wrong.code == "INVALID_ASSIGNEE"
    done = await desk.call(
        "tickets.bulk", {"keys": [key, key], "op": "assign", "assignee_id": ADMIN.id}, by=OPERATOR
    )
    assert done == {"results": [{"key": key, "ok": True, "status": 200}]}


async def test_an_api_token_acts_for_the_user_it_belongs_to(desk: Desk) -> None:
    token = Who(Actor(kind=ActorKind.TOKEN, id="tok-1"), "requester", on_behalf_of=ALICE.id)
    ticket = await desk.open(by=token)
    assert ticket["requester_id"] == ALICE.id
    assert (await desk.call("tickets.get", {"key": ticket["key"]}, by=ALICE))["key"] == "OPS-1"
    [created] = await desk.deps.store.read_stream(f"ticket-{ticket['key']}", to_version=1)
    assert created.metadata.actor == token.actor  # the audit trail names the token


async def test_an_unknown_role_or_body_key_is_refused_not_crashed(desk: Desk) -> None:
    odd = Who(Actor(kind=ActorKind.USER, id="u-x"), "superuser")
    assert (await desk.refused("tickets.list", {}, by=odd)).status == 403
    assert (await desk.refused("tickets.list", {"limit": 0}, by=ALICE)).status == 422
    assert (await desk.refused("tickets.get", {"key": "OPS-1", "x": 1}, by=ALICE)).status == 422
    assert (await desk.refused("tickets.get", {}, by=ALICE)).status == 422
