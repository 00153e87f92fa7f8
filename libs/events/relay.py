"""The outbox relay: publishes every committed event to JetStream, in commit order, exactly once
from the log's point of view (Nats-Msg-Id = event id), resuming from its checkpoint after a crash.

One relay per database holds a session advisory lock; other replicas wait as hot standbys. The
store publishes a wake-up on core NATS after each commit that appended (a hint, never the data;
Postgres NOTIFY would serialise every commit); a short safety tick covers a lost wake-up and
writers outside OpsLedger. The read is the store's gap-safe batch read.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import PubAck
from prometheus_client import Counter, Histogram

from libs.events.db import Conn, connect
from libs.events.envelope import Envelope
from libs.events.horizon import HORIZON_LAG, horizon_holder
from libs.events.settings import Settings
from libs.events.store import CommitCursor, EventStore, dump_envelope
from libs.events.supervisor import TaskStatus
from libs.events.wakeups import sleep_until_woken

log = logging.getLogger(__name__)

RELAY_LOCK = 7_311_002
STALL_AFTER_S = 20.0
"""The relay beats every round (at least every SAFETY_WAKE_S when idle); silent this long while
up, it is reported stalled (a read or a publish that hangs, a table locked under it)."""
BATCH = 500
HELD_BACK_FIRST_S = 0.002
HELD_BACK_GRACE_S = 0.1
HELD_BACK_MAX_S = 0.25
HELD_BACK_REPORT_S = 1.0
SAFETY_WAKE_S = 0.25
PUBLISH_TIMEOUT_S = 10.0
"""A batch whose PubAcks are not all back by then fails; the supervisor runs the relay again
and it republishes from its checkpoint (JetStream drops the duplicates by Nats-Msg-Id)."""

PUBLISHED = Counter("opsledger_relay_published_total", "Events published to JetStream by the relay")
PUBLISH_SECONDS = Histogram(
    "opsledger_relay_batch_seconds", "Time to publish one batch and receive its PubAcks"
)


class HeldBack:
    """Backoff while the read horizon is held. Concurrent commits hold it for a moment all the
    time, so for the first HELD_BACK_GRACE_S the relay looks again every 2 ms (latency); held
    longer (a long transaction somewhere), it looks again less and less often, up to every
    250 ms; past a second, the holder is named in the log (once) and its age kept in the
    horizon gauge."""

    def __init__(self) -> None:
        self.delay = 0.0
        self.since: float | None = None
        self.reported = False

    async def wait(self, conn: Conn, stop: asyncio.Event, wake: asyncio.Event) -> None:
        now = time.monotonic()
        if self.since is None:
            self.since = now
        if now - self.since < HELD_BACK_GRACE_S:
            self.delay = HELD_BACK_FIRST_S
        else:
            self.delay = min(HELD_BACK_MAX_S, max(HELD_BACK_FIRST_S, self.delay * 2))
        if now - self.since >= HELD_BACK_REPORT_S:
            holder = await horizon_holder(conn)
            HORIZON_LAG.set(holder.age_s if holder else 0.0)
            if holder is not None and not self.reported:
                log.warning("relay held back by the read horizon: %s", holder.describe())
                self.reported = True
        if now - self.since < HELD_BACK_GRACE_S:
            # the holder is most likely a commit in flight, whose wake-up ends the wait
            await sleep_until_woken(stop, wake, self.delay)
            return
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=self.delay)

    def clear(self) -> None:
        if self.since is not None:
            HORIZON_LAG.set(0.0)
        self.delay, self.since, self.reported = 0.0, None, False


class Relay:
    def __init__(
        self,
        *,
        store: EventStore,
        nc: NatsClient,
        js: JetStreamContext,
        settings: Settings,
        database_url: str,
        name: str = "relay",
    ) -> None:
        self.store = store
        self.nc = nc
        self.js = js
        self.settings = settings
        self.database_url = database_url
        self.name = name
        self._wake = asyncio.Event()
        self.is_leader = False

    async def run(self, status: TaskStatus) -> None:
        """Wait for leadership, then relay until the process stops. Any failure (a connection
        closed under us, Postgres restarting, JetStream unavailable) is raised to the supervisor,
        which logs it and runs this again after a backoff: the relay never ends quietly."""
        stop = status.stopping
        conn = await connect(self.database_url, application=f"opsledger {self.name}")
        try:
            status.up()
            while not await conn.fetchval("SELECT pg_try_advisory_lock($1)", RELAY_LOCK):
                status.beat()  # a standby waiting its turn is making the progress it can
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=1.0)
                if stop.is_set():
                    return
            self.is_leader = True
            # The checkpoint need not wait for a WAL flush: if a crash loses the last one, the
            # relay republishes a few events, which JetStream and the consumers both drop.
            await conn.execute("SET synchronous_commit = off")
            log.info("relay %s is the leader", self.name)
            wake_up = await self.nc.subscribe(self.settings.relay_wake_subject, cb=self._on_wake)
            try:
                await self._relay(conn, status)
            finally:
                with contextlib.suppress(Exception):
                    await wake_up.unsubscribe()
        finally:
            self.is_leader = False
            with contextlib.suppress(Exception):
                await conn.close()

    async def _relay(self, conn: Conn, status: TaskStatus) -> None:
        stop = status.stopping
        cursor = await self._load_checkpoint(conn)
        held = HeldBack()
        while not stop.is_set():
            status.beat()
            self._wake.clear()
            batch = await self.store.read_batch(cursor, limit=BATCH, conn=conn)
            if batch.events:
                await self._publish(batch.events)
                cursor = batch.cursor
                await self._save_checkpoint(conn, cursor)
            if len(batch.events) == BATCH:
                continue
            if batch.held_back:
                # committed rows sit behind an older transaction still running: look again,
                # less often the longer it lasts
                await held.wait(conn, stop, self._wake)
                continue
            held.clear()
            await sleep_until_woken(stop, self._wake, SAFETY_WAKE_S)

    async def _on_wake(self, _: Msg) -> None:
        self._wake.set()

    async def _publish(self, events: list[Envelope]) -> None:
        """Publish a batch pipelined, then wait for every PubAck. `publish_async` shares one
        reply subscription where `publish` made a request (inbox, future, timer) per event: at
        2,000 ev/s that was most of the relay's time."""
        started = time.perf_counter()
        pending: list[asyncio.Future[PubAck]] = []
        try:
            async with asyncio.timeout(PUBLISH_TIMEOUT_S):
                for env in events:
                    pending.append(
                        await self.js.publish_async(
                            self.settings.event_subject(env.type),
                            dump_envelope(env),
                            headers={"Nats-Msg-Id": str(env.id)},
                        )
                    )
                acks = await asyncio.gather(*pending)
        finally:
            for each in pending:  # an unanswered publish must not hold its slot for ever
                each.cancel()
        PUBLISH_SECONDS.observe(time.perf_counter() - started)
        PUBLISHED.inc(len(acks))

    async def _load_checkpoint(self, conn: Conn) -> CommitCursor:
        row = await conn.fetchrow(
            "SELECT tx_id::text AS tx, position FROM eventstore.relay_checkpoint WHERE name = $1",
            self.name,
        )
        return CommitCursor(int(row["tx"]), row["position"]) if row else CommitCursor()

    async def _save_checkpoint(self, conn: Conn, cursor: CommitCursor) -> None:
        await conn.execute(
            "INSERT INTO eventstore.relay_checkpoint (name, tx_id, position) "
            "VALUES ($1, $2::text::xid8, $3) ON CONFLICT (name) DO UPDATE "
            "SET tx_id = excluded.tx_id, position = excluded.position",
            self.name,
            str(cursor.tx_id),
            cursor.position,
        )
