"""Events of durable timers (stream `timer-<id>`), written by libs/events/timers.py."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from libs.events.registry import DomainEvent, event, upcaster


@event("timer.scheduled", version=2)
class TimerScheduled(DomainEvent):
    timer_id: UUID
    due_at: datetime
    target_stream: str
    fire_type: str
    fire_data: dict[str, Any]
    fire_schema_version: int | None
    """The schema version `fire_data` was written at (None: written before v2 recorded it)."""


@upcaster("timer.scheduled", from_version=1)
def _scheduled_v1_to_v2(data: dict[str, Any]) -> dict[str, Any]:
    return {**data, "fire_schema_version": None}


@event("timer.fired")
class TimerFired(DomainEvent):
    timer_id: UUID
    fired_at: datetime
    event_id: UUID


@event("timer.cancelled")
class TimerCancelled(DomainEvent):
    timer_id: UUID


@event("timer.parked")
class TimerParked(DomainEvent):
    """The timer could not fire (its payload no longer decodes, its target refused it); it is
    kept for an operator instead of blocking the timers behind it."""

    timer_id: UUID
    error: str
