"""The executor's reads: jobs filtered by state, ticket and rule, paged newest first; a bad
cursor or body is a 422; every refusal code has its status."""

from __future__ import annotations

from typing import get_args

import pytest

from libs.events.errors import ServiceError
from services.executor.refusals import RefusalCode
from services.executor.rpc_edge import STATUS
from tests.executor.stack import Stack

TAG = [{"type": "add_tag", "params": {"tag": "seen"}}]


def test_every_refusal_code_has_a_status() -> None:
    assert set(STATUS) == set(get_args(RefusalCode))
    assert STATUS["NOT_DEAD_LETTERED"] == 409


async def test_jobs_are_listed_by_ticket_rule_and_state_in_pages(stack: Stack) -> None:
    first, second = await stack.ticket(), await stack.ticket()
    ids = [await stack.queue(TAG, ticket=first, rule_id="r-a") for _ in range(3)]
    other = await stack.queue(TAG, ticket=second, rule_id="r-b")
    for job in [*ids, other]:
        await stack.settled(job)
    mine = await stack.call("jobs.list", {"ticket": first})
    assert [j["id"] for j in mine["items"]] == ids[::-1] and mine["next_cursor"] is None
    by_rule = await stack.call("jobs.list", {"rule": "r-b"})
    assert [j["id"] for j in by_rule["items"]] == [other]
    assert (await stack.call("jobs.list", {"state": "queued"}))["items"] == []
    page = await stack.call("jobs.list", {"limit": 2})
    rest = await stack.call("jobs.list", {"limit": 2, "cursor": page["next_cursor"]})
    seen = [j["id"] for j in page["items"] + rest["items"]]
    assert seen == [other, *ids[::-1]] and rest["next_cursor"] is None
    shown = mine["items"][0]
    assert shown["action"] == "add_tag" and shown["rule_version"] == 1 and shown["ticket"] == first


@pytest.mark.parametrize(
    "body",
    [{"cursor": "nope"}, {"state": "exploded"}, {"limit": 0}, {"bogus": 1}, {"ticket": "a\x00b"}],
)
async def test_bad_list_input_is_a_422(stack: Stack, body: dict[str, object]) -> None:
    with pytest.raises(ServiceError) as caught:
        await stack.call("jobs.list", body)
    assert caught.value.status == 422


async def test_an_unknown_job_is_a_404(stack: Stack) -> None:
    with pytest.raises(ServiceError) as caught:
        await stack.call("jobs.get", {"id": "f" * 64})
    assert (caught.value.status, caught.value.code) == (404, "NOT_FOUND")
