"""GET /api/v1/stream holds only while the access it was opened with does: it ends when the
session logs out or the token is revoked (checked before each event and while idle), a role
change decides what it sends from then on, and each user may hold only so many open."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import httpx
import pytest

from libs.events.settings import Settings
from libs.events.testing import eventually
from tests.gateway.live_server import (
    Served,
    StreamReader,
    open_ticket,
    served_gateway,
    signed_up,
)


@contextlib.asynccontextmanager
async def gateway_with(
    settings: Settings, database_url: str, nats_url: str, **overrides: object
) -> AsyncIterator[Served]:
    tuned = settings.model_copy(update=overrides)
    async with served_gateway(tuned, database_url, nats_url) as served:
        yield served


@pytest.fixture
async def quick(settings: Settings, database_url: str, nats_url: str) -> AsyncIterator[Served]:
    """Idle streams re-check their caller every second."""
    async with gateway_with(settings, database_url, nats_url, stream_recheck_s=1.0) as served:
        yield served


@pytest.fixture
async def slow(settings: Settings, database_url: str, nats_url: str) -> AsyncIterator[Served]:
    """Idle streams re-check only every minute: what ends a stream here is an event."""
    async with gateway_with(settings, database_url, nats_url, stream_recheck_s=60.0) as served:
        yield served


async def test_an_idle_stream_ends_soon_after_its_session_logs_out(quick: Served) -> None:
    await signed_up(quick.base, "admin@example.com")
    alice, _ = await signed_up(quick.base, "alice@example.com")
    async with StreamReader(alice) as reader:
        logout = await alice.post("/api/v1/auth/logout")
        assert logout.status_code == 204
        await reader.wait_until_ended(timeout=5)


async def test_a_logged_out_stream_ends_before_sending_the_next_event(slow: Served) -> None:
    admin, _ = await signed_up(slow.base, "admin@example.com")
    operator, _ = await signed_up(slow.base, "op@example.com", role="operator", admin=admin)
    async with StreamReader(operator) as reader:
        assert (await operator.post("/api/v1/auth/logout")).status_code == 204
        key = await open_ticket(admin, "after the logout")
        await reader.wait_until_ended(timeout=5)
    assert reader.of(key) == []


async def test_a_stream_on_a_revoked_token_ends(quick: Served) -> None:
    admin, _ = await signed_up(quick.base, "admin@example.com")
    made = await admin.post("/api/v1/tokens", json={"name": "feed", "scopes": ["api"]})
    assert made.status_code == 201, made.text
    token = made.json()
    on_token = httpx.AsyncClient(base_url=quick.base, timeout=10)
    async with StreamReader(on_token, {"Authorization": f"Bearer {token['token']}"}) as reader:
        assert reader.status == 200
        revoked = await admin.delete(f"/api/v1/tokens/{token['id']}")
        assert revoked.status_code == 204, revoked.text
        key = await open_ticket(admin, "after the revocation")
        await reader.wait_until_ended(timeout=5)
    assert reader.of(key) == []
    await on_token.aclose()


async def test_a_demoted_operator_stops_seeing_other_tickets_and_internal_comments(
    slow: Served,
) -> None:
    admin, _ = await signed_up(slow.base, "admin@example.com")
    operator, operator_id = await signed_up(
        slow.base, "op@example.com", role="operator", admin=admin
    )
    bob, _ = await signed_up(slow.base, "bob@example.com")
    own = await open_ticket(operator, "the operator's own")
    async with StreamReader(operator) as reader:
        demoted = await admin.patch(f"/api/v1/users/{operator_id}", json={"role": "requester"})
        assert demoted.status_code == 200, demoted.text
        bobs = await open_ticket(bob, "bob's")
        internal = await admin.post(
            f"/api/v1/tickets/{own}/comments", json={"body": "staff only", "internal": True}
        )
        assert internal.status_code == 201, internal.text
        public = await admin.post(f"/api/v1/tickets/{own}/comments", json={"body": "for you"})
        assert public.status_code == 201, public.text
        for _ in range(250):
            if reader.of(own):
                break
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.3)  # anything it must not send would have arrived by now
        assert not reader.ended.is_set()  # a role change narrows the stream, it does not end it
    assert reader.of(bobs) == []
    assert [data["data"]["body"] for _, data in reader.of(own)] == ["for you"]


async def test_a_user_may_hold_only_so_many_streams_open(
    settings: Settings, database_url: str, nats_url: str
) -> None:
    async with gateway_with(settings, database_url, nats_url, streams_per_user=2) as served:
        await signed_up(served.base, "admin@example.com")
        alice, _ = await signed_up(served.base, "alice@example.com")
        async with StreamReader(alice) as first, StreamReader(alice) as second:
            assert (first.status, second.status) == (200, 200)
            async with StreamReader(alice) as third:
                assert third.status == 429
                assert third.body["error"]["code"] == "TOO_MANY_STREAMS"
                assert third.response_headers is not None
                assert int(third.response_headers["retry-after"]) >= 1

        async def a_slot_is_free_again() -> bool:
            async with StreamReader(alice) as again:
                return again.status == 200

        # closing them gives the slots back (once the server has noticed, within a second)
        await eventually(a_slot_is_free_again, timeout=5)


async def test_the_stream_cap_counts_other_replicas_streams_until_their_heartbeat_stops(
    settings: Settings, database_url: str, nats_url: str
) -> None:
    async with gateway_with(settings, database_url, nats_url, streams_per_user=1) as served:
        await signed_up(served.base, "admin@example.com")
        alice, alice_id = await signed_up(served.base, "alice@example.com")
        # a stream another replica holds open (its heartbeat is fresh)
        await served.deps.pool.execute(
            "INSERT INTO gateway.open_streams (stream_id, user_id) VALUES (gen_random_uuid(), $1)",
            alice_id,
        )
        async with StreamReader(alice) as refused:
            assert refused.status == 429
        # that replica was killed: its heartbeat stopped a minute ago
        await served.deps.pool.execute(
            "UPDATE gateway.open_streams SET heartbeat_at = now() - interval '1 minute'"
        )
        async with StreamReader(alice) as served_again:
            assert served_again.status == 200
