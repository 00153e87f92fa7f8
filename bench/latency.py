"""Commit-to-handler latency via the relay and JetStream; raw JetStream beside it."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Coroutine, Hashable
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, StorageType, StreamConfig

from bench.events import META, Sample
from bench.harness import paced, settle
from bench.servers import BenchEnv
from libs.events.bus import connect_nats
from libs.events.consumer_loop import FETCH_BATCH
from libs.events.consumers import Consumer, HandlerContext
from libs.events.envelope import new_id
from libs.events.runtime import Service
from libs.events.store import NO_STREAM
from libs.events.system import System

DRAIN_TIMEOUT_S = 15.0


@dataclass
class Probe:
    """Start and arrival instants (perf_counter) per message key. `complete()` is O(1): the
    drain polls it, and a scan of every key per poll cost the measured process whole seconds."""

    sent: dict[Hashable, float] = field(default_factory=dict)
    got: dict[Hashable, float] = field(default_factory=dict)
    _waiting: set[Hashable] = field(default_factory=set)

    def sending(self, key: Hashable) -> None:
        self.sent[key] = time.perf_counter()
        if key not in self.got:
            self._waiting.add(key)

    def arrived(self, key: Hashable) -> None:
        if key not in self.got:
            self.got[key] = time.perf_counter()
            self._waiting.discard(key)

    def complete(self) -> bool:
        return not self._waiting


@dataclass(frozen=True)
class Latency:
    """Delays in ms, and the offered, achieved-send and delivered rates in messages/s; `lost`
    counts messages still undelivered DRAIN_TIMEOUT_S after the last send."""

    delays_ms: list[float]
    offered: float
    sent_rate: float
    delivered_rate: float
    lost: int


def summarise(probe: Probe, offered: float, started: float, last_sent: float) -> Latency:
    delays = [(probe.got[k] - t) * 1000 for k, t in probe.sent.items() if k in probe.got]
    arrivals = [probe.got[k] for k in probe.sent if k in probe.got]
    span = (max(arrivals) - started) if arrivals else float("nan")
    return Latency(
        delays_ms=delays,
        offered=offered,
        sent_rate=len(probe.sent) / (last_sent - started),
        delivered_rate=len(arrivals) / span,
        lost=len(probe.sent) - len(arrivals),
    )


Send = Callable[[Probe, int], Coroutine[Any, Any, None]]


async def run_paced(probe: Probe, send: Send, *, rate: float, seconds: float) -> Latency:
    """Warm up for a second, then measure one paced run of `send(probe, i)`."""
    warm = Probe()
    await paced(lambda i: send(warm, -1 - i), rate=rate, seconds=1.0)
    await settle(warm.complete, timeout=DRAIN_TIMEOUT_S)
    started = time.perf_counter()
    await paced(lambda i: send(probe, i), rate=rate, seconds=seconds)
    last_sent = time.perf_counter()
    await settle(probe.complete, timeout=DRAIN_TIMEOUT_S)
    return summarise(probe, rate, started, last_sent)


async def ours(
    env: BenchEnv,
    database_url: str,
    *,
    rate: float,
    seconds: float,
    make_system: Callable[..., System] = System,
) -> Latency:
    """Append single events at `rate`; the delay runs from `append` returning to the handler."""
    probes: dict[UUID, Probe] = {}

    async def on_sample(ctx: HandlerContext, _: Sample) -> None:
        probe = probes.get(ctx.envelope.id)
        if probe is not None:
            probe.arrived(ctx.envelope.id)

    service = Service(
        name="bench",
        consumers=[
            Consumer(name="bench-latency", handlers={"bench.sample": on_sample}, replayable=False)
        ],
    )
    settings = env.settings.model_copy(update={"database_url": database_url})
    system = make_system(
        settings=settings,
        database_url=database_url,
        nats_url=env.nats_url,
        services=[service],
        timers=False,
        name="bench",
    )
    try:
        deps = await system.start()

        async def send(probe: Probe, i: int) -> None:
            event_id = new_id()
            probes[event_id] = probe
            await deps.store.append(
                f"lat{i}", [Sample(n=i)], expected_version=NO_STREAM, metadata=META, ids=[event_id]
            )
            probe.sending(event_id)

        return await run_paced(Probe(), send, rate=rate, seconds=seconds)
    finally:
        await system.stop()


async def raw(env: BenchEnv, *, rate: float, seconds: float, size: int) -> Latency:
    """js.publish at `rate` to a throwaway stream, pulled like the runtime pulls (same batch)."""
    nc = await connect_nats(env.nats_url, name="bench-raw")
    js = nc.jetstream()
    namespace = env.settings.namespace
    stream, subject = f"{namespace.upper()}_RAWLAT", f"{namespace}.rawlat"
    probes: dict[int, Probe] = {}
    consumer: asyncio.Task[None] | None = None

    async def send(probe: Probe, i: int) -> None:
        probes[i] = probe
        payload = f"{i:>12}".encode().ljust(size, b" ")
        probe.sending(i)
        await js.publish(subject, payload, headers={"Nats-Msg-Id": str(new_id())}, timeout=10.0)

    try:
        await js.add_stream(
            StreamConfig(
                name=stream, subjects=[subject], storage=StorageType.FILE, duplicate_window=120
            )
        )
        config = ConsumerConfig(
            durable_name="rawlat",
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL,
            ack_wait=60.0,
            max_ack_pending=1000,
        )
        await js.add_consumer(stream, config)
        sub = await js.pull_subscribe_bind("rawlat", stream=stream)
        consumer = asyncio.create_task(_consume(sub, probes))
        return await run_paced(Probe(), send, rate=rate, seconds=seconds)
    finally:
        if consumer is not None:
            consumer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await consumer
        with contextlib.suppress(Exception):
            await js.delete_stream(stream)
        await nc.close()


async def _consume(sub: JetStreamContext.PullSubscription, probes: dict[int, Probe]) -> None:
    while True:
        try:
            messages = await sub.fetch(FETCH_BATCH, timeout=1.0)
        except (TimeoutError, NatsTimeoutError):
            continue
        for msg in messages:
            key = int(msg.data[:12])
            probe = probes.get(key)
            if probe is not None:
                probe.arrived(key)
            await msg.ack()
