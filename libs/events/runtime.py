"""The service runtime: what a service declares, and the loops that run it on JetStream.

Each consumer is a durable JetStream pull consumer named after the service, so every replica of
the service pulls from the same one and each event is processed once between them. A failing
handler is retried with exponential backoff and jitter (nak with a delay), then parked in the
store where an operator sees it and can retry it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from prometheus_client import Counter
from pydantic import ValidationError

from libs.events.bus import RpcClient, RpcHandler, RpcServer
from libs.events.consumers import Consumer, Dispatcher, HandlerFailed, park
from libs.events.db import Migration, migrations_in
from libs.events.settings import Settings
from libs.events.store import EventStore, load_envelope

log = logging.getLogger(__name__)

HANDLED = Counter("opsledger_events_handled_total", "Events processed", ["consumer", "outcome"])
FETCH_BATCH = 64
FETCH_TIMEOUT_S = 1.0
ACK_WAIT_S = 60.0


@dataclass
class Deps:
    """What a running service is given: settings, the pool, the store and the bus."""

    settings: Settings
    pool: asyncpg.Pool
    store: EventStore
    nc: NatsClient
    js: JetStreamContext
    rpc: RpcClient


BackgroundTask = Callable[[Deps, asyncio.Event], Coroutine[Any, Any, None]]


@dataclass(frozen=True)
class Service:
    """A service as the runtime sees it (each `services/<name>/app.py` defines one SERVICE)."""

    name: str
    consumers: Sequence[Consumer] = ()
    rpc: Callable[[Deps], Mapping[str, RpcHandler]] | None = None
    migrations_dir: Path | None = None
    background: Sequence[BackgroundTask] = ()
    http: Callable[[Deps], Any] | None = None
    """An ASGI app factory, for the service that serves HTTP (the gateway)."""
    preflight: Callable[[Settings], None] | None = None
    """Checks run before anything starts (e.g. a required secret); raise to refuse to start."""

    def migrations(self) -> list[Migration]:
        return migrations_in(self.name, self.migrations_dir) if self.migrations_dir else []

    def dispatchers(self, deps: Deps) -> dict[str, Dispatcher]:
        return {
            c.name: Dispatcher(
                consumer=c, service=self.name, store=deps.store, settings=deps.settings
            )
            for c in self.consumers
        }


def backoff_delay(attempt: int, *, base: float = 0.2, cap: float = 30.0) -> float:
    """Exponential backoff with full jitter for the `attempt`-th failure (1-based)."""
    return random.uniform(base, min(cap, base * 2 ** (attempt - 1)) + base)


@dataclass
class ServiceRunner:
    """Runs one replica of a service: its consumers, its request/reply methods, its tasks."""

    service: Service
    deps: Deps
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _rpc: RpcServer | None = None
    _subs: list[JetStreamContext.PullSubscription] = field(default_factory=list)

    async def start(self) -> None:
        dispatchers = self.service.dispatchers(self.deps)
        for consumer in self.service.consumers:
            sub = await self._subscribe(consumer)
            self._subs.append(sub)
            loop = self._consume(sub, dispatchers[consumer.name])
            self._tasks.append(asyncio.create_task(loop, name=f"{consumer.name}-consumer"))
        for task in self.service.background:
            self._tasks.append(asyncio.create_task(task(self.deps, self._stop)))
        if self.service.rpc is not None:
            self._rpc = RpcServer(
                nc=self.deps.nc,
                settings=self.deps.settings,
                service=self.service.name,
                methods=dict(self.service.rpc(self.deps)),
            )
            await self._rpc.start()

    async def stop(self) -> None:
        self._stop.set()
        if self._rpc is not None:
            await self._rpc.stop()
        # a loop is cancelled between messages or mid-fetch; a message it had not acked yet is
        # redelivered to another replica after ack_wait, and the checkpoints make that harmless
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        for sub in self._subs:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
        self._subs.clear()

    async def _subscribe(self, consumer: Consumer) -> JetStreamContext.PullSubscription:
        settings = self.deps.settings
        config = ConsumerConfig(
            durable_name=consumer.name,
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL,
            ack_wait=ACK_WAIT_S,
            max_deliver=-1,  # we count attempts and park ourselves, where an operator sees it
            max_ack_pending=1000,
            filter_subject=settings.event_subject_filter(consumer.subject_prefix()),
        )
        await self.deps.js.add_consumer(settings.stream_name, config)
        return await self.deps.js.pull_subscribe_bind(consumer.name, stream=settings.stream_name)

    async def _consume(
        self, sub: JetStreamContext.PullSubscription, dispatcher: Dispatcher
    ) -> None:
        while not self._stop.is_set():
            try:
                messages = await sub.fetch(FETCH_BATCH, timeout=FETCH_TIMEOUT_S)
            except (TimeoutError, NatsTimeoutError):
                continue
            except Exception as exc:  # connection trouble: nats-py reconnects; we wait and retry
                log.warning("fetch for %s failed: %r", dispatcher.consumer.name, exc)
                await asyncio.sleep(0.5)
                continue
            await self._handle_batch(messages, dispatcher)

    async def _handle_batch(self, messages: list[Msg], dispatcher: Dispatcher) -> None:
        """Process a fetched batch in order in ONE transaction (one commit, one WAL flush, instead
        of one per event), then ack it. If anything in it fails, nothing of it is kept and the
        batch is processed one message at a time, so a failing event is retried and parked alone.
        """
        if len(messages) == 1:
            await self._handle(messages[0], dispatcher)
            return
        try:
            envelopes = [load_envelope(msg.data) for msg in messages]
            outcomes: list[bool] = []
            async with self.deps.store.transaction() as conn:
                async with asyncio.timeout(self.deps.settings.handler_timeout_s):
                    for envelope in envelopes:  # in order: order within a stream matters
                        outcomes.append(await dispatcher.apply(conn, envelope))
        except Exception:
            for msg in messages:
                await self._handle(msg, dispatcher)
            return
        await asyncio.gather(*(msg.ack() for msg in messages), return_exceptions=True)
        name = dispatcher.consumer.name
        for processed in outcomes:
            HANDLED.labels(name, "processed" if processed else "duplicate").inc()

    async def _handle(self, msg: Msg, dispatcher: Dispatcher) -> None:
        name = dispatcher.consumer.name
        try:
            envelope = load_envelope(msg.data)
        except (ValidationError, ValueError):
            log.error("%s: dropping a message that is not an envelope on %s", name, msg.subject)
            await msg.term()
            return
        attempt = msg.metadata.num_delivered or 1
        settings = self.deps.settings
        try:
            async with self.deps.store.transaction() as conn:
                processed = await asyncio.wait_for(
                    dispatcher.apply(conn, envelope), timeout=settings.handler_timeout_s
                )
            await msg.ack()
            HANDLED.labels(name, "processed" if processed else "duplicate").inc()
        except Exception as exc:
            failed = exc.envelope if isinstance(exc, HandlerFailed) else envelope
            cause = exc.cause if isinstance(exc, HandlerFailed) else exc
            if attempt < settings.handler_max_attempts:
                log.warning("%s failed on %s (attempt %d): %r", name, failed.id, attempt, cause)
                HANDLED.labels(name, "retried").inc()
                with contextlib.suppress(Exception):
                    await msg.nak(delay=backoff_delay(attempt))
                return
            log.error("%s parks %s after %d attempts: %r", name, failed.id, attempt, cause)
            async with self.deps.pool.acquire() as conn:
                await park(
                    conn, consumer=name, envelope=failed, error=repr(cause), attempts=attempt
                )
            HANDLED.labels(name, "parked").inc()
            if failed.id == envelope.id:
                await msg.ack()
            else:  # the delivered event comes after the parked one: process it again
                await msg.nak(delay=0.01)
