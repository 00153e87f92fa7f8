"""A user's notifications over the executor's RPC methods: their own only, newest first in keyset
pages, `unread` filtering, read once (reading again changes nothing), and someone else's
notification reads as not found, never forbidden."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from libs.events.catalog.notifications import NotificationRead, notification_stream
from libs.events.errors import ServiceError
from tests.executor.notices import call, inbox, people_known, queue_on
from tests.executor.stack import Stack
from tests.tickets.support import ADMIN, ALICE, BOB, BOT, OPERATOR, PEOPLE, Who


@pytest.fixture
async def bobs(stack: Stack) -> AsyncIterator[tuple[Stack, list[dict[str, Any]]]]:
    """Five notifications of Bob's (`note 0` first .. `note 4` last) and one of Alice's."""
    await people_known(stack.deps, len(PEOPLE))
    actions = [
        {"type": "notify", "params": {"to": f"user:{BOB.id}", "message": f"note {i}"}}
        for i in range(5)
    ]
    actions.append({"type": "notify", "params": {"to": "requester", "message": "yours"}})
    job = await stack.settled(
        await queue_on(stack.deps, actions, ticket="OPS-2", requester=ALICE.id)
    )
    assert job["state"] == "succeeded", job
    yield stack, await inbox(stack.deps, BOB)


async def refused(stack: Stack, method: str, body: dict[str, Any], *, by: Who) -> ServiceError:
    with pytest.raises(ServiceError) as caught:
        await call(stack.deps, method, body, by=by)
    return caught.value


async def test_a_user_sees_only_their_own_newest_first(
    bobs: tuple[Stack, list[dict[str, Any]]],
) -> None:
    stack, items = bobs
    assert [i["message"] for i in items] == [f"note {i}" for i in (4, 3, 2, 1, 0)]
    assert [i["message"] for i in await inbox(stack.deps, ALICE)] == ["yours"]
    assert await inbox(stack.deps, ADMIN) == []  # an admin sees no one else's either
    assert await inbox(stack.deps, OPERATOR) == []


async def test_pages_follow_one_another_without_gaps_or_repeats(
    bobs: tuple[Stack, list[dict[str, Any]]],
) -> None:
    stack, items = bobs
    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        page = await call(stack.deps, "notifications.list", {"limit": 2, "cursor": cursor}, by=BOB)
        pages += 1
        assert len(page["items"]) <= 2
        seen += [i["id"] for i in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 3 and seen == [i["id"] for i in items]


async def test_reading_marks_it_read_once_and_unread_filters(
    bobs: tuple[Stack, list[dict[str, Any]]],
) -> None:
    stack, items = bobs
    target = items[1]
    read = await call(stack.deps, "notifications.read", {"id": target["id"]}, by=BOB)
    assert read["id"] == target["id"] and read["read"] is True and read["read_at"] is not None
    again = await call(stack.deps, "notifications.read", {"id": target["id"]}, by=BOB)
    assert again == read
    unread = await inbox(stack.deps, BOB, unread=True)
    assert [i["id"] for i in unread] == [i["id"] for i in items if i["id"] != target["id"]]
    everything = await inbox(stack.deps, BOB)
    assert [i["read"] for i in everything] == [False, True, False, False, False]
    stream = await stack.deps.store.read_stream(notification_stream(target["id"]))
    assert [e.type for e in stream].count(NotificationRead.event_type) == 1


async def test_someone_elses_notification_is_not_found(
    bobs: tuple[Stack, list[dict[str, Any]]],
) -> None:
    stack, items = bobs
    for who in (ALICE, OPERATOR, ADMIN):
        error = await refused(stack, "notifications.read", {"id": items[0]["id"]}, by=who)
        assert (error.status, error.code) == (404, "NOT_FOUND")
    missing = await refused(stack, "notifications.read", {"id": "0" * 32}, by=BOB)
    assert (missing.status, missing.code) == (404, "NOT_FOUND")
    assert missing.message == error.message  # the same answer: nothing tells them apart
    assert (await inbox(stack.deps, BOB))[0]["read"] is False


@pytest.mark.parametrize(
    ("method", "body", "status", "code"),
    [
        ("notifications.read", {"id": "not-an-id"}, 422, "VALIDATION_ERROR"),
        ("notifications.list", {"cursor": "bm9wZQ=="}, 422, "INVALID_CURSOR"),
        ("notifications.list", {"limit": 0}, 422, "VALIDATION_ERROR"),
        ("notifications.list", {"unread": "perhaps"}, 422, "VALIDATION_ERROR"),
        ("notifications.list", {"surprise": 1}, 422, "VALIDATION_ERROR"),
    ],
)
async def test_bad_requests_are_refused_clearly(
    stack: Stack, method: str, body: dict[str, Any], status: int, code: str
) -> None:
    error = await refused(stack, method, body, by=BOB)
    assert (error.status, error.code) == (status, code), error


async def test_a_service_has_no_notifications_to_read(stack: Stack) -> None:
    error = await refused(stack, "notifications.list", {}, by=BOT)
    assert (error.status, error.code) == (403, "FORBIDDEN")
