"""Which events an event subscription gets: pure rules over an envelope, no I/O.

A pattern is an event type where `*` stands for any run of characters (`ticket.*`, `*`). Never
delivered, whatever the patterns: types this code does not know (their secret fields could not
be redacted) and `timer.*` (a timer carries another event's payload before it is written, which
the fired event then delivers itself). An internal comment, and any event carrying one (a job
fired by it holds its body in its context), goes only to a subscription with `include_internal`
(`libs.contracts.ticket_visibility.is_internal` decides what is internal, as for requesters),
and so do one user's notifications."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any, Final

from libs.contracts.ticket_visibility import is_internal
from libs.events.envelope import Envelope
from libs.events.registry import EventRegistry

NEVER_DELIVERED: Final = ("timer.*",)
PERSONAL: Final = ("notification.*",)
"""One user's in-app notifications: delivered, like internal comments, only to a subscription
with `include_internal` (their text may quote what a requester must not see)."""


@dataclass(frozen=True)
class Wants:
    """What one subscription asks for."""

    patterns: tuple[str, ...]
    include_internal: bool = False


def matches(patterns: Sequence[str], event_type: str) -> bool:
    """Whether `event_type` matches one of `patterns` (the contract allows only `[a-z_.*]`, so
    fnmatch's `?` and `[...]` never occur)."""
    return any(fnmatchcase(event_type, pattern) for pattern in patterns)


def carries_internal(data: Mapping[str, Any]) -> bool:
    """Whether an event's data is, or holds, something internal: the event itself (an internal
    comment), or the trigger a job was fired by (`context.trigger`)."""
    if is_internal(data):
        return True
    context = data.get("context")
    trigger = context.get("trigger") if isinstance(context, Mapping) else None
    return isinstance(trigger, Mapping) and is_internal(trigger)


def delivers(wants: Wants, envelope: Envelope, registry: EventRegistry) -> bool:
    """Whether a subscription that `wants` this gets `envelope`."""
    if not registry.knows(envelope.type) or matches(NEVER_DELIVERED, envelope.type):
        return False
    if not matches(wants.patterns, envelope.type):
        return False
    if wants.include_internal:
        return True
    return not matches(PERSONAL, envelope.type) and not carries_internal(envelope.data)
