"""Attacks on replaying a subscription: an operator re-sending a dead letter from what the
delivery log shows them (its position), when the position just before it holds no event."""

from __future__ import annotations

from typing import Any

import pytest

from libs.events.catalog.tickets import TicketTagged
from libs.events.envelope import Actor, Metadata
from libs.events.errors import ServiceError
from libs.events.settings import Settings
from libs.events.store import ANY
from libs.events.testing import eventually
from tests.executor.receiver import Receiver
from tests.executor.stack import Stack
from tests.executor.subscribers import DELIVERY, deliveries, subscribe
from tests.tickets.support import ADMIN, OPERATOR

TICKETS = Metadata(actor=Actor.service("tickets"), service="tickets")


class RolledBack(Exception):
    pass


@pytest.fixture
def fast(settings: Settings) -> Settings:
    return settings.model_copy(update={**DELIVERY, "delivery_max_attempts": 2})


async def test_a_dead_letter_can_be_replayed_from_the_position_the_log_shows(
    stack: Stack, receiver: Receiver
) -> None:
    """Fixed. A dead letter at position P holds its stream until a replay. `replay {after}`
    re-sends what comes after the event AT `after`, and refuses (422 INVALID_POSITION) any
    position that holds no event. Positions are an identity column: every rolled-back append
    (a ConcurrencyError, a refused command, a crash) leaves a hole, so P-1 is often no event.
    The delivery log shows the operator P and nothing else; after=P-1 is refused, after=P
    skips the dead letter (it is superseded and never re-sent), and in commit order the event
    before P may be anywhere (found only by paging GET /api/v1/events). Should: the operator
    can re-send from the dead letter itself (an inclusive `from`, or `after` accepting any
    position, holes included, as a place in the log)."""
    receiver.statuses = [500]
    hook = await subscribe(stack, receiver.url, ["ticket.tagged"])
    key = await stack.ticket()
    with pytest.raises(RolledBack):
        async with stack.deps.store.transaction() as conn:
            [hole] = await stack.deps.store.append(
                f"ticket-{key}", [TicketTagged(tag="never", by=OPERATOR.id)],
                expected_version=ANY, metadata=TICKETS, conn=conn,
            )  # fmt: skip
            raise RolledBack  # the position it took stays a hole in the log
    await stack.desk.call("tickets.add_tag", {"key": key, "tag": "t1"}, by=OPERATOR)

    async def dead() -> list[dict[str, Any]]:
        return await deliveries(stack, hook, state="dead_lettered")

    [letter] = await eventually(dead, timeout=20, interval=0.1)
    assert letter["position"] == hole.position + 1, "another append came in between"
    receiver.statuses = [200]
    try:
        replayed = await stack.call(
            "webhooks.replay", {"id": hook, "after": letter["position"] - 1}, by=ADMIN
        )
    except ServiceError as refused:
        raise AssertionError(
            f"replaying from the dead letter at {letter['position']} was refused: "
            f"{refused.status} {refused.code}"
        ) from None
    assert replayed["superseded"] == 1

    async def resent() -> list[dict[str, Any]]:
        return await deliveries(stack, hook, state="delivered")

    [again] = await eventually(resent, timeout=20, interval=0.1)
    assert again["event_id"] == letter["event_id"]
