"""Event subscriptions: a receiver that fails its first two calls still gets every matching
event once per delivery id, signed, in order per stream; the deliveries are listed (newest
first, by state, in pages); `events` is refused on a chat endpoint; a stored v1
`webhook.registered` loads as an endpoint without internal comments."""

from __future__ import annotations

from pathlib import Path

import pytest

from libs.events.catalog.executor import WebhookRegistered
from libs.events.envelope import Envelope
from libs.events.errors import ServiceError
from libs.events.registry import REGISTRY
from libs.events.settings import Settings
from tests.executor.receiver import Receiver
from tests.executor.stack import Stack
from tests.executor.subscribers import (
    DELIVERY,
    all_delivered,
    assert_each_event_once,
    assert_in_order_per_stream,
    assert_signed,
    busy_tickets,
    deliveries,
    got,
    subscribe,
    ticket_events,
)
from tests.tickets.support import ADMIN

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "webhook.registered.v1.json"


@pytest.fixture
def fast(settings: Settings) -> Settings:
    return settings.model_copy(update=DELIVERY)


async def test_a_receiver_failing_its_first_two_calls_gets_every_event_once_in_order(
    stack: Stack, receiver: Receiver
) -> None:
    receiver.statuses = [500, 503, 200]
    hook = await subscribe(stack, f"{receiver.url}/events", ["ticket.*"])
    keys = await busy_tickets(stack, 3)
    expected = await ticket_events(stack, keys)
    listed = await all_delivered(stack, hook, len(expected))
    received = got(receiver)
    assert len(received) == len(expected) + 2 and [g.status for g in received[:2]] == [500, 503]
    assert_each_event_once(received, expected)
    assert_in_order_per_stream(received)
    assert_signed(received)
    assert {r.path for r in receiver.received} == {"/events"}
    first = received[0].event
    stored = next(e for e in expected if e.id == first.id)
    assert first.model_dump(mode="json") == {
        "id": str(stored.id), "type": stored.type, "stream_id": stored.stream_id,
        "version": stored.version, "position": stored.position,
        "recorded_at": first.recorded_at.isoformat().replace("+00:00", "Z"),
        "actor": stored.metadata.actor.model_dump(mode="json"), "data": stored.data,
    }  # fmt: skip
    assert first.recorded_at == stored.recorded_at
    assert all(d["state"] == "delivered" and d["last_status"] == 200 for d in listed)
    assert sum(d["attempts"] for d in listed) == len(received)
    assert {d["id"] for d in listed} == {g.delivery_id for g in received}


async def test_deliveries_are_listed_newest_first_by_state_in_pages(
    stack: Stack, receiver: Receiver
) -> None:
    hook = await subscribe(stack, receiver.url, ["ticket.created"])
    keys = [await stack.ticket() for _ in range(3)]
    every = await all_delivered(stack, hook, 3)
    assert [d["stream_id"] for d in every] == [f"ticket-{k}" for k in reversed(keys)]
    assert {d["type"] for d in every} == {"ticket.created"} and not any(d["replay"] for d in every)
    page = await stack.call("webhooks.deliveries", {"id": hook, "limit": 2}, by=ADMIN)
    rest = await stack.call(
        "webhooks.deliveries", {"id": hook, "limit": 2, "cursor": page["next_cursor"]}, by=ADMIN
    )
    assert [d["id"] for d in page["items"] + rest["items"]] == [d["id"] for d in every]
    assert rest["next_cursor"] is None
    assert await deliveries(stack, hook, state="dead_lettered") == []
    for body, status in (
        ({"id": "wh_0000000000000000"}, 404),
        ({"id": hook, "state": "lost"}, 422),
        ({"id": hook, "cursor": "nope"}, 422),
    ):
        with pytest.raises(ServiceError) as caught:
            await stack.call("webhooks.deliveries", body, by=ADMIN)
        assert caught.value.status == status


async def test_a_chat_endpoint_cannot_subscribe_to_events(stack: Stack) -> None:
    slack = {"name": "chat", "kind": "slack", "url": "https://hooks.slack.com/services/T/B/X"}
    with pytest.raises(ServiceError) as caught:
        await stack.call("webhooks.create", {**slack, "events": ["ticket.*"]}, by=ADMIN)
    assert (caught.value.status, caught.value.code) == (422, "VALIDATION_ERROR")
    made = await stack.call("webhooks.create", slack, by=ADMIN)
    with pytest.raises(ServiceError) as caught:
        await stack.call("webhooks.update", {"id": made["id"], "events": ["ticket.*"]}, by=ADMIN)
    assert caught.value.status == 422
    hook = await stack.call(
        "webhooks.create",
        {"name": "feed", "url": "https://hooks.example.com/x", "events": ["ticket.*"]},
        by=ADMIN,
    )
    with pytest.raises(ServiceError) as caught:
        await stack.call("webhooks.update", {"id": hook["id"], "kind": "teams"}, by=ADMIN)
    assert caught.value.status == 422
    assert hook["include_internal"] is False and hook["events"] == ["ticket.*"]


def test_a_stored_v1_webhook_registered_loads_without_internal_comments() -> None:
    stored = Envelope.model_validate_json(FIXTURE.read_text())
    assert stored.schema_version == 1
    loaded = REGISTRY.load(stored)
    assert isinstance(loaded, WebhookRegistered)
    assert loaded.include_internal is False and loaded.events == ["ticket.*"]
    assert WebhookRegistered.schema_version == 2
