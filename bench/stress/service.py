"""The stress service the workers run: its event, its recording consumer, injected failures."""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

from libs.events.consumers import Consumer, HandlerContext
from libs.events.registry import DomainEvent, event
from libs.events.runtime import Service

MIGRATIONS = Path(__file__).parents[1] / "stress_migrations"
EVENT_TYPE = "stress.appended"
CONSUMER = "stress-recorder"
INJECTED = ("InjectedFailure", "PoisonedEvent")
"""The injected failures' names, as they show in the worker logs."""


@event(EVENT_TYPE)
class StressAppended(DomainEvent):
    """One stress event; `poison` ones fail on every attempt and must end up parked."""

    writer: int
    seq: int
    poison: bool = False


class InjectedFailure(Exception):
    """A random handler failure (after the handler's insert, so its transaction rolls back)."""


class PoisonedEvent(Exception):
    """The handler always fails on a poison event."""


@dataclass
class HandlerChaos:
    failure_rate: float = 0.0


CHAOS = HandlerChaos()
"""Set by the worker process from its command line."""


async def record_handled(ctx: HandlerContext, item: StressAppended) -> None:
    env = ctx.envelope
    await ctx.conn.execute(
        "INSERT INTO bench_stress.handled (event_id, stream_id, version, replica) "
        "VALUES ($1, $2, $3, $4)",
        env.id,
        env.stream_id,
        env.version,
        ctx.settings.data_dir.name,
    )
    if item.poison:
        raise PoisonedEvent(f"poison event {env.id}")
    if random.random() < CHAOS.failure_rate:
        raise InjectedFailure(f"injected failure on {env.id}")


STRESS = Service(
    name="stress",
    consumers=[
        Consumer(
            name=CONSUMER,
            handlers={EVENT_TYPE: record_handled},
            replayable=False,
            tables=("bench_stress.handled",),
        )
    ],
    migrations_dir=MIGRATIONS,
)
