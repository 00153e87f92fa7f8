"""The pipeline's raw baseline: a JetStream three-hop chain (publish -> consume -> publish ->
consume -> publish -> consume), each hop a durable pull consumer acking what it handled, the
same shape as event -> rules -> job -> executor -> ticket event with nothing else in between."""

from __future__ import annotations

import asyncio
import contextlib
import time

from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, StorageType, StreamConfig

from bench.harness import paced, settle
from bench.servers import BenchEnv
from libs.events.bus import connect_nats

HOPS = 3
DRAIN_TIMEOUT_S = 15.0


async def three_hop_chain(
    env: BenchEnv, *, rate_s: float, seconds: float, hops: int = HOPS
) -> list[float]:
    """Delays (ms) from the first publish to the last hop's consume, at `rate_s` per second,
    over `hops` hops (one: a plain publish -> consume)."""
    nc = await connect_nats(env.nats_url, name="bench-chain")
    js = nc.jetstream()
    ns = env.settings.namespace
    stream = f"{ns.upper()}_CHAIN"
    subjects = [f"{ns}.chain.h{hop}" for hop in range(1, hops + 1)]
    sent: dict[int, float] = {}
    arrived: dict[int, float] = {}
    tasks: list[asyncio.Task[None]] = []
    try:
        await js.add_stream(StreamConfig(name=stream, subjects=subjects, storage=StorageType.FILE))
        for hop, subject in enumerate(subjects):
            durable = f"chain{hop}"
            await js.add_consumer(
                stream,
                ConsumerConfig(
                    durable_name=durable, filter_subject=subject, ack_policy=AckPolicy.EXPLICIT
                ),
            )
            sub = await js.pull_subscribe_bind(durable, stream=stream)
            onward = subjects[hop + 1] if hop + 1 < len(subjects) else None
            tasks.append(asyncio.create_task(_hop(js, sub, onward, arrived)))

        async def send(i: int) -> None:
            sent[i] = time.perf_counter()
            await js.publish(subjects[0], str(i).encode())

        await paced(send, rate=rate_s, seconds=seconds)
        await settle(lambda: len(arrived) >= len(sent), timeout=DRAIN_TIMEOUT_S)
        return [(arrived[i] - t) * 1000 for i, t in sent.items() if i in arrived]
    finally:
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        with contextlib.suppress(Exception):
            await js.delete_stream(stream)
        await nc.close()


async def _hop(
    js: JetStreamContext,
    sub: JetStreamContext.PullSubscription,
    onward: str | None,
    arrived: dict[int, float],
) -> None:
    while True:
        try:
            messages = await sub.fetch(64, timeout=1.0)
        except (TimeoutError, NatsTimeoutError):
            continue
        for msg in messages:
            if onward is None:
                arrived.setdefault(int(msg.data), time.perf_counter())
            else:
                await js.publish(onward, msg.data)
            await msg.ack()
