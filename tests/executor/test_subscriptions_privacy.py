"""What a subscription never gets: internal comments (and jobs fired by one) unless it opted in
with `include_internal`; secrets and password hashes (every SECRET field is redacted, as
`GET /api/v1/events` shows it); timer events; types this code does not know."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import pytest

from libs.events.catalog.people import SessionStarted, UserPasswordSet
from libs.events.envelope import Actor, Envelope, Metadata
from libs.events.registry import REDACTED, REGISTRY
from libs.events.settings import Settings
from libs.events.testing import eventually
from services.executor.subscriptions.matching import Wants, delivers
from tests.executor.receiver import Receiver
from tests.executor.stack import Stack
from tests.executor.subscribers import DELIVERY, all_delivered, deliveries, got, subscribe
from tests.tickets.support import ADMIN, OPERATOR

HASH = "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA"
PEOPLE = Metadata(actor=Actor.system(), service="people")


@pytest.fixture
def fast(settings: Settings) -> Settings:
    return settings.model_copy(update=DELIVERY)


async def test_internal_comments_go_only_to_subscriptions_that_ask_for_them(
    stack: Stack, receiver: Receiver
) -> None:
    staff_only = await Receiver().start()
    try:
        public = await subscribe(stack, receiver.url, ["ticket.commented"])
        internal = await subscribe(
            stack, staff_only.url, ["ticket.commented"], include_internal=True
        )
        key = await stack.ticket()
        for body, hidden in (("public note", False), ("root cause: cron", True), ("ok", False)):
            comment = {"key": key, "body": body, "internal": hidden}
            await stack.desk.call("tickets.comment", comment, by=OPERATOR)
        await all_delivered(stack, internal, 3)
        await all_delivered(stack, public, 2)
    finally:
        await staff_only.stop()
    assert [g.event.data["body"] for g in got(receiver)] == ["public note", "ok"]
    assert [g.event.data["internal"] for g in got(staff_only)] == [False, True, False]
    shown = await stack.call("webhooks.get", {"id": internal}, by=ADMIN)
    assert shown["include_internal"] is True


async def test_secrets_and_password_hashes_never_leave(stack: Stack, receiver: Receiver) -> None:
    hook = await subscribe(stack, receiver.url, ["*"])
    token_url = "https://hooks.slack.com/services/T0/B0/URLTOKEN123"
    other = {"name": "chat", "kind": "slack", "url": token_url, "secret": "other-s3cret"}
    await stack.call("webhooks.create", other, by=ADMIN)
    session = SessionStarted(
        session_id="s-1", user_id="u-alice", secret_hash="f" * 64,
        expires_at=datetime.now(UTC) + timedelta(hours=1),
    )  # fmt: skip
    await stack.deps.store.append(
        "user-u-alice", [UserPasswordSet(user_id="u-alice", password_hash=HASH)],
        expected_version=-1, metadata=PEOPLE,
    )  # fmt: skip
    await stack.deps.store.append("session-s-1", [session], expected_version=0, metadata=PEOPLE)
    key = await stack.ticket()
    job = await stack.queue([{"type": "add_tag", "params": {"tag": "x"}}], ticket=key)
    await stack.settled(job)  # its retries and leases may schedule timers: none is delivered
    needed = {"webhook.registered", "user.password_set", "user.session_started", "ticket.tagged"}

    async def drained() -> bool:
        sent = {g.event.type for g in got(receiver) if g.status == 200}
        return needed <= sent and not await deliveries(stack, hook, state="pending")

    await eventually(drained, timeout=20, interval=0.1)
    received = got(receiver)
    everything = b"\n".join(g.raw for g in received)
    for secret in (b"other-s3cret", b"URLTOKEN123", b"$argon2", b"f" * 64, b"subscriber-s3cret"):
        assert secret not in everything
    types = [g.event.type for g in received]
    assert not [t for t in types if t.startswith("timer.")]
    by_type = {g.event.type: g.event.data for g in received}
    assert by_type["user.password_set"]["password_hash"] == REDACTED
    assert by_type["webhook.registered"]["url"] == REDACTED
    assert by_type["webhook.registered"]["secret"] == REDACTED


def test_what_a_subscription_is_never_sent() -> None:
    def envelope(type_: str, data: dict[str, Any]) -> Envelope:
        return Envelope(
            id=uuid4(), stream_id="x-1", version=1, type=type_, schema_version=1, data=data,
            metadata=PEOPLE, recorded_at=datetime.now(UTC), position=1,
        )  # fmt: skip

    everything = Wants(("*",))
    fired_by_internal = {"context": {"trigger": {"body": "secret plan", "internal": True}}}
    assert not delivers(everything, envelope("job.queued", fired_by_internal), REGISTRY)
    assert delivers(Wants(("*",), True), envelope("job.queued", fired_by_internal), REGISTRY)
    assert delivers(everything, envelope("job.queued", {"context": {"trigger": {}}}), REGISTRY)
    assert not delivers(everything, envelope("timer.fired", {}), REGISTRY)
    assert not delivers(everything, envelope("nobody.knows", {}), REGISTRY)
    assert delivers(Wants(("ticket.*",)), envelope("ticket.tagged", {}), REGISTRY)
    assert not delivers(Wants(("ticket.*",)), envelope("ticket_type.defined", {}), REGISTRY)
    assert not delivers(Wants(("incident.resolved",)), envelope("ticket.tagged", {}), REGISTRY)


def test_one_users_notifications_go_only_to_subscriptions_that_ask_for_internal() -> None:
    note = Envelope(
        id=uuid4(), stream_id="notification-1", version=1, type="notification.created",
        schema_version=1, data={}, metadata=PEOPLE, recorded_at=datetime.now(UTC), position=1,
    )  # fmt: skip
    assert not delivers(Wants(("*",)), note, REGISTRY)
    assert not delivers(Wants(("notification.*",)), note, REGISTRY)
    assert delivers(Wants(("notification.*",), include_internal=True), note, REGISTRY)
