"""Who may see a ticket, its events and its comments: the one answer that every read path of the
tickets service (get, as_of, list, comments, audit trail) and the gateway's live stream give.

Staff (operators, admins, and automation) see every ticket and everything on it. A requester sees
the tickets they requested and what happens on them, except what is internal: an internal
comment, and any other event of the ticket whose data says `"internal": true`, whatever its type
(today only `ticket.commented` carries the flag; an event another writer marks internal is for
staff alone too). A ticket the caller may not see reads as not found, never as forbidden.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol


class Viewer(Protocol):
    """The caller as either side knows it (the service's Caller, the gateway's Principal)."""

    @property
    def user_id(self) -> str: ...

    @property
    def is_staff(self) -> bool: ...


def may_see(viewer: Viewer, *, requester_id: str | None, internal: bool = False) -> bool:
    """Whether `viewer` may see something of the ticket requested by `requester_id` (None: no
    known requester); `internal` marks what is for staff only."""
    if viewer.is_staff:
        return True
    return requester_id is not None and requester_id == viewer.user_id and not internal


def is_internal(data: Mapping[str, Any]) -> bool:
    """Whether an event's data marks it as for staff only."""
    return data.get("internal") is True


def may_see_event(viewer: Viewer, *, requester_id: str | None, data: Mapping[str, Any]) -> bool:
    """Whether `viewer` may see an event (its data) of the ticket requested by `requester_id`."""
    return may_see(viewer, requester_id=requester_id, internal=is_internal(data))


def sees_internal(viewer: Viewer) -> bool:
    """Whether `viewer` may see what is internal: `may_see`'s rule as a query filter."""
    return viewer.is_staff


def requester_scope(viewer: Viewer) -> str | None:
    """The requester whose tickets a list shows `viewer` (None: everyone's): `may_see` as a
    query filter."""
    return None if viewer.is_staff else viewer.user_id
