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
