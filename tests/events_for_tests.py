"""Event types used only by the foundation's tests (registered under a `test.` prefix)."""

from __future__ import annotations

from typing import Any

from libs.events.registry import REGISTRY, DomainEvent, event


@event("test.counted")
class Counted(DomainEvent):
    n: int


@event("test.renamed", version=2)
class Renamed(DomainEvent):
    """v1 had `name`; v2 splits it into `first` and `last`."""

    first: str
    last: str


@REGISTRY.upcaster("test.renamed", from_version=1)
def _renamed_v1_to_v2(data: dict[str, Any]) -> dict[str, Any]:
    first, _, last = str(data["name"]).partition(" ")
    return {"first": first, "last": last}


@event("test.poison")
class Poison(DomainEvent):
    fail_times: int


@event("test.flaky")
class Flaky(DomainEvent):
    """Its handler (tests/faulty_service.py) is slow for the first `slow_times` attempts and
    fails for the first `fail_times`; attempts are counted outside the handler's transaction."""

    fail_times: int = 0
    slow_times: int = 0
    slow_s: float = 0.0


@event("test.appends_twice")
class AppendsTwice(DomainEvent):
    """Its handler appends to one stream twice in one run."""

    stream_id: str
