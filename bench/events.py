"""The event type the benchmarks append (registered as `bench.sample`)."""

from __future__ import annotations

from libs.events.envelope import Actor, Metadata
from libs.events.registry import DomainEvent, event

NOTE = "x" * 160
"""Payload filler: with the metadata this makes a row of roughly 450 bytes."""

META = Metadata(actor=Actor.system(), service="bench")


@event("bench.sample")
class Sample(DomainEvent):
    n: int
    note: str = NOTE
