"""Events of durable timers (stream `timer-<id>`), written by libs/events/timers.py."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from libs.events.registry import DomainEvent, event


@event("timer.scheduled")
class TimerScheduled(DomainEvent):
    timer_id: UUID
    due_at: datetime
    target_stream: str
    fire_type: str
    fire_data: dict[str, Any]


@event("timer.fired")
class TimerFired(DomainEvent):
    timer_id: UUID
    fired_at: datetime
    event_id: UUID


@event("timer.cancelled")
class TimerCancelled(DomainEvent):
    timer_id: UUID
