"""Candidate changes to libs/events, tried here on subclasses (libs/events itself is untouched)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal
from uuid import UUID

import asyncpg
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext

from libs.events.consumers import Dispatcher, HandlerContext, HandlerFailed, set_stream_checkpoint
from libs.events.db import Conn
from libs.events.envelope import Envelope, Metadata
from libs.events.registry import DomainEvent
from libs.events.relay import Relay
from libs.events.runtime import FETCH_BATCH, Deps, Service, ServiceRunner
from libs.events.settings import Settings
from libs.events.store import EventStore, load_envelope
from libs.events.system import System, open_deps, prepare

log = logging.getLogger(__name__)

LOCK_CHECKPOINT = (
    "INSERT INTO eventstore.consumer_streams AS c (consumer, stream_id, version) "
    "VALUES ($1, $2, 0) ON CONFLICT (consumer, stream_id) DO UPDATE SET version = c.version "
    "RETURNING version"
)
"""Insert-or-lock the checkpoint row and read it in one round trip (today: two statements)."""

LOCK_CHECKPOINTS = (
    "INSERT INTO eventstore.consumer_streams AS c (consumer, stream_id, version) "
    "SELECT $1, s, 0 FROM unnest($2::text[]) AS s ORDER BY s "
    "ON CONFLICT (consumer, stream_id) DO UPDATE SET version = c.version "
    "RETURNING stream_id, version"
)
"""The same for every distinct stream of a batch at once (sorted: replicas lock in one order)."""

SET_CHECKPOINTS = (
    "UPDATE eventstore.consumer_streams AS c SET version = greatest(c.version, u.v) "
    "FROM unnest($2::text[], $3::int[]) AS u(s, v) WHERE c.consumer = $1 AND c.stream_id = u.s"
)

NOTIFY_AFTER_COMMIT = (
    "BEGIN; SET LOCAL synchronous_commit TO off; "
    "SELECT pg_notify('eventstore_appended', ''); COMMIT"
)
"""The wake-up in its own tiny transaction after the append committed: NOTIFY's global commit
lock is then held for microseconds, not across the append's WAL flush (async commit is fine for
a wake-up that carries no data)."""

POLL_S = 0.005
Wake = Literal["notify", "after-commit", "nats", "poll"]


class LeanDispatcher(Dispatcher):
    """Dispatcher.apply with one statement to lock the checkpoint and no savepoint per handler
    (a failure aborts the caller's transaction anyway): 6 round trips per event become 3."""

    async def apply(self, conn: Conn, envelope: Envelope) -> bool:
        last = int(await conn.fetchval(LOCK_CHECKPOINT, self.consumer.name, envelope.stream_id))
        if envelope.version <= last:
            return False
        todo: list[Envelope] = []
        if envelope.version > last + 1:
            todo = await self.store.read_stream(
                envelope.stream_id,
                from_version=last + 1,
                to_version=envelope.version - 1,
                types=self.consumer.types,
                conn=conn,
            )
        todo.append(envelope)
        for item in todo:
            await self.run_handler(conn, item)
        await set_stream_checkpoint(conn, self.consumer.name, envelope.stream_id, envelope.version)
        return True

    async def run_handler(self, conn: Conn, envelope: Envelope) -> None:
        handler = self.consumer.handlers.get(envelope.type)
        if handler is None:
            return
        ctx = HandlerContext(
            conn=conn,
            store=self.store,
            envelope=envelope,
            consumer=self.consumer.name,
            service=self.service,
            settings=self.settings,
        )
        try:
            await handler(ctx, self.registry.load(envelope))
        except Exception as exc:
            raise HandlerFailed(envelope, exc) from exc


class BulkDispatcher(LeanDispatcher):
    """Checkpoints of a whole batch locked in one statement and written back in one."""

    async def apply_many(self, conn: Conn, envelopes: list[Envelope]) -> None:
        streams = sorted({e.stream_id for e in envelopes})
        rows = await conn.fetch(LOCK_CHECKPOINTS, self.consumer.name, streams)
        last: dict[str, int] = {r["stream_id"]: r["version"] for r in rows}
        before = dict(last)
        for envelope in envelopes:
            seen = last[envelope.stream_id]
            if envelope.version <= seen:
                continue
            todo: list[Envelope] = []
            if envelope.version > seen + 1:
                todo = await self.store.read_stream(
                    envelope.stream_id,
                    from_version=seen + 1,
                    to_version=envelope.version - 1,
                    types=self.consumer.types,
                    conn=conn,
                )
            todo.append(envelope)
            for item in todo:
                await self.run_handler(conn, item)
            last[envelope.stream_id] = envelope.version
        changed = [s for s, v in last.items() if v != before[s]]
        if changed:
            versions = [last[s] for s in changed]
            await conn.execute(SET_CHECKPOINTS, self.consumer.name, changed, versions)


@dataclass(frozen=True)
class LeanService(Service):
    dispatcher_cls: type[LeanDispatcher] = LeanDispatcher

    def dispatchers(self, deps: Deps) -> dict[str, Dispatcher]:
        return {
            c.name: self.dispatcher_cls(
                consumer=c, service=self.name, store=deps.store, settings=deps.settings
            )
            for c in self.consumers
        }


class BatchRunner(ServiceRunner):
    """Applies a whole fetched batch in ONE transaction (in order, one commit, then acks); if
    anything in it fails the batch rolls back and goes through the per-message path (retries,
    parking) unchanged."""

    async def _consume(
        self, sub: JetStreamContext.PullSubscription, dispatcher: Dispatcher
    ) -> None:
        while not self._stop.is_set():
            try:
                messages = await sub.fetch(FETCH_BATCH, timeout=1.0)
            except (TimeoutError, NatsTimeoutError):
                continue
            except Exception as exc:
                log.warning("fetch for %s failed: %r", dispatcher.consumer.name, exc)
                await asyncio.sleep(0.5)
                continue
            if await self._apply_together(messages, dispatcher):
                continue
            for msg in messages:
                await self._handle(msg, dispatcher)

    async def _apply_together(self, messages: list[Msg], dispatcher: Dispatcher) -> bool:
        try:
            envelopes = [load_envelope(m.data) for m in messages]
            timeout = self.deps.settings.handler_timeout_s
            async with self.deps.pool.acquire() as conn, conn.transaction():
                if isinstance(dispatcher, BulkDispatcher):
                    await asyncio.wait_for(dispatcher.apply_many(conn, envelopes), timeout)
                else:
                    for envelope in envelopes:
                        await asyncio.wait_for(dispatcher.apply(conn, envelope), timeout)
        except Exception:
            return False
        for msg in messages:
            await msg.ack()
        return True


class AfterCommitNotifyStore(EventStore):
    """EventStore without the NOTIFY trigger: NOTIFY_AFTER_COMMIT on the same connection, one
    extra round trip, once the append's own transaction has committed."""

    async def _append(
        self,
        conn: Conn,
        args: tuple[Any, ...],
        events: Sequence[DomainEvent],
        event_ids: list[UUID],
        metadata: Metadata,
    ) -> list[Envelope]:
        written = await super()._append(conn, args, events, event_ids, metadata)
        if not conn.is_in_transaction():  # a caller's transaction notifies after its commit
            await conn.execute(NOTIFY_AFTER_COMMIT)
        return written


class NatsWakingStore(EventStore):
    """After each append commits, a core-NATS wake-up for the relay (instead of NOTIFY)."""

    def __init__(self, pool: asyncpg.Pool, nc: NatsClient, subject: str) -> None:
        super().__init__(pool)
        self.nc = nc
        self.subject = subject

    async def append(
        self,
        stream_id: str,
        events: Sequence[DomainEvent],
        *,
        expected_version: int,
        metadata: Metadata,
        ids: Sequence[UUID] | None = None,
        conn: Conn | None = None,
    ) -> list[Envelope]:
        written = await super().append(
            stream_id,
            events,
            expected_version=expected_version,
            metadata=metadata,
            ids=ids,
            conn=conn,
        )
        if conn is None:  # inside a caller's transaction the caller commits later
            await self.nc.publish(self.subject, b"")
        return written


class WakeRelay(Relay):
    """The relay woken by a core-NATS message (`nats`) or polling every POLL_S (`poll`)."""

    def __init__(
        self,
        *,
        nc: NatsClient,
        wake: Wake,
        subject: str,
        store: EventStore,
        js: JetStreamContext,
        settings: Settings,
        database_url: str,
    ) -> None:
        super().__init__(store=store, nc=nc, js=js, settings=settings, database_url=database_url)
        self.nc = nc
        self.wake = wake
        self.subject = subject

    async def run(self, stop: asyncio.Event) -> None:
        if self.wake != "nats":
            return await super().run(stop)

        async def on_msg(_: Msg) -> None:
            self._wake.set()

        sub = await self.nc.subscribe(self.subject, cb=on_msg)
        try:
            await super().run(stop)
        finally:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()

    async def _sleep_until_woken(self, stop: asyncio.Event) -> None:
        if self.wake == "poll":
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=POLL_S)
            return
        await super()._sleep_until_woken(stop)


@dataclass
class ProtoSystem(System):
    """System.start with the candidate changes switched on one by one."""

    batch_consumer: bool = False
    lean_dispatcher: bool = False
    bulk_checkpoints: bool = False
    wake: Wake = "notify"

    async def start(self) -> Deps:
        self.deps = deps = await open_deps(
            self.settings, database_url=self.database_url, nats_url=self.nats_url, name=self.name
        )
        await prepare(deps, self.services)
        subject = f"{self.settings.namespace}.relay.wake"
        if self.wake != "notify":
            await deps.pool.execute("DROP TRIGGER IF EXISTS events_notify ON eventstore.events")
        if self.wake == "nats":
            deps.store = NatsWakingStore(deps.pool, deps.nc, subject)
        if self.wake == "after-commit":
            deps.store = AfterCommitNotifyStore(deps.pool)
        self.relay_worker = WakeRelay(
            nc=deps.nc,
            wake=self.wake,
            subject=subject,
            store=deps.store,
            js=deps.js,
            settings=self.settings,
            database_url=self.database_url,
        )
        self._tasks.append(asyncio.create_task(self.relay_worker.run(self._stop)))
        runner_cls = BatchRunner if self.batch_consumer else ServiceRunner
        for service in self.services:
            if self.lean_dispatcher or self.bulk_checkpoints:
                service = LeanService(
                    name=service.name,
                    consumers=service.consumers,
                    dispatcher_cls=BulkDispatcher if self.bulk_checkpoints else LeanDispatcher,
                )
            runner = runner_cls(service=service, deps=deps)
            await runner.start()
            self.runners.append(runner)
        return deps
