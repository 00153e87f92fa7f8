"""The fan-out: turns the log's events into deliveries, one per matching event and subscription.

Every replica runs it under the supervisor. A step claims one subscription's row (FOR UPDATE
SKIP LOCKED: replicas share the subscriptions, and a replay waits for the step), reads the next
committed events after the row's place from the store (gap-safe, commit order; never the bus's
copy), inserts a delivery for each one `matching.delivers` lets through and moves the row on,
all in one short transaction: an event is matched once per subscription and generation (the
unique key makes a repeat a no-op), and a crash loses nothing. The endpoint's patterns are read
as they are at the step. It is woken by the store's after-commit wake-up on NATS (a hint, never
data; at most every MIN_PASS_GAP_S, however busy the log), and looks again every TICK_S anyway.
The subscriptions are listed again every TICK_S: with none, a commit costs it nothing."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Final

from nats.aio.msg import Msg

from libs.events.runtime import Deps
from libs.events.wakeups import sleep_until_woken
from services.executor.subscriptions.cursors import cursor_of
from services.executor.subscriptions.matching import Wants, delivers

log = logging.getLogger(__name__)

BATCH: Final = 500
TICK_S: Final = 1.0
AGAIN_S: Final = 0.1
MIN_PASS_GAP_S: Final = 0.01
"""At most this often a pass, however many commits wake it."""
"""How soon to look again when a step filled its batch or committed events were held back."""
ROUNDS: Final = 20
"""Batches of one subscription per pass, so one far behind does not starve the others."""
CHANNEL: Final = "executor_deliveries"
"""NOTIFYed when deliveries may have become sendable (new ones, a lane freed)."""

_CLAIM = """
SELECT s.tx_id::text AS tx_id, s.position, s.generation, w.events, w.include_internal
FROM executor.subscriptions s JOIN executor.webhooks w USING (webhook_id)
WHERE s.webhook_id = $1 AND s.active
FOR UPDATE OF s SKIP LOCKED
"""

_INSERT = """
INSERT INTO executor.deliveries
    (delivery_id, webhook_id, generation, event_id, stream_id, version, position, type)
SELECT gen_random_uuid(), $1, $2, x.event_id, x.stream_id, x.version, x.position, x.type
FROM unnest($3::uuid[], $4::text[], $5::int[], $6::bigint[], $7::text[])
     WITH ORDINALITY AS x(event_id, stream_id, version, position, type, n)
ORDER BY x.n
ON CONFLICT ON CONSTRAINT deliveries_once_per_generation DO NOTHING
"""


async def fan_out_step(deps: Deps, webhook_id: str) -> tuple[int, bool]:
    """One batch of one subscription: (deliveries inserted, whether to look again soon)."""
    async with deps.pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(_CLAIM, webhook_id)
        if row is None:  # another replica's step has it, or it stopped subscribing
            return 0, False
        events = json.loads(row["events"]) if isinstance(row["events"], str) else row["events"]
        wants = Wants(tuple(events or ()), include_internal=row["include_internal"])
        start = cursor_of(row["tx_id"], row["position"])
        batch = await deps.store.read_batch(start, limit=BATCH, conn=conn)
        chosen = [e for e in batch.events if delivers(wants, e, deps.store.registry)]
        inserted = 0
        if chosen:
            status = await conn.execute(
                _INSERT,
                webhook_id,
                row["generation"],
                [e.id for e in chosen],
                [e.stream_id for e in chosen],
                [e.version for e in chosen],
                [e.position for e in chosen],
                [e.type for e in chosen],
            )
            inserted = int(status.rsplit(" ", 1)[-1])
        if batch.events:
            await conn.execute(
                "UPDATE executor.subscriptions SET tx_id = $2::text::xid8, position = $3, "
                "updated_at = now() WHERE webhook_id = $1",
                webhook_id,
                str(batch.cursor.tx_id),
                batch.cursor.position,
            )
        if inserted:
            await conn.execute("SELECT pg_notify($1, $2)", CHANNEL, webhook_id)
    return inserted, len(batch.events) == BATCH or batch.held_back


async def active_subscriptions(deps: Deps) -> list[str]:
    rows = await deps.pool.fetch(
        "SELECT webhook_id FROM executor.subscriptions WHERE active ORDER BY webhook_id"
    )
    return [r["webhook_id"] for r in rows]


async def fan_out_pass(deps: Deps, ids: list[str] | None = None) -> bool:
    """Every active subscription (or those of `ids`), up to ROUNDS batches each; whether to
    look again soon."""
    again = False
    for webhook_id in await active_subscriptions(deps) if ids is None else ids:
        for _ in range(ROUNDS):
            _, more = await fan_out_step(deps, webhook_id)
            if not more:
                break
        else:
            more = True
        again = again or more
    return again


async def run_fanout(deps: Deps, stopping: asyncio.Event) -> None:
    """The executor's fan-out (one per replica, under the supervisor)."""
    wake = asyncio.Event()

    async def on_wake(_: Msg) -> None:
        wake.set()

    subscription = await deps.nc.subscribe(deps.settings.relay_wake_subject, cb=on_wake)
    ids: list[str] = []
    listed_at = -TICK_S
    try:
        while not stopping.is_set():
            wake.clear()
            if time.monotonic() - listed_at >= TICK_S:  # a new subscription waits <= TICK_S
                ids, listed_at = await active_subscriptions(deps), time.monotonic()
            again = await fan_out_pass(deps, ids) if ids else False
            # every commit wakes this: coalesce the wake-ups of a busy log, so that with no
            # subscription (or a quiet one) it costs the database nothing per commit
            await asyncio.sleep(MIN_PASS_GAP_S)
            await sleep_until_woken(stopping, wake, AGAIN_S if again else TICK_S)
    finally:
        await subscription.unsubscribe()
