"""A throwaway JetStream stream with one durable pull consumer, for the tests of the consumer's
own pull requests (libs/events/prefetch.py)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import nats
from nats.aio.client import Client as NatsClient
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, StorageType, StreamConfig

from libs.events.settings import Settings


@contextlib.asynccontextmanager
async def durable(
    settings: Settings, nats_url: str, *, name: str, ack_wait: float = 30.0, **extra: Any
) -> AsyncIterator[tuple[NatsClient, JetStreamContext, str, str]]:
    """Stream `<stream_name>_<NAME>` on subject `<namespace>.<name>`, with a durable consumer
    `name` (more ConsumerConfig fields in `extra`): yields (nc, js, stream, subject)."""
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    stream, subject = f"{settings.stream_name}_{name.upper()}", f"{settings.namespace}.{name}"
    try:
        await js.add_stream(StreamConfig(name=stream, subjects=[subject], storage=StorageType.FILE))
        config = ConsumerConfig(
            durable_name=name, ack_policy=AckPolicy.EXPLICIT, ack_wait=ack_wait, **extra
        )
        await js.add_consumer(stream, config)
        yield nc, js, stream, subject
    finally:
        with contextlib.suppress(Exception):
            await js.delete_stream(stream)
        await nc.close()
