"""Commands to a ticket and who sends them; a Decision is what the domain answers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final, Literal

from libs.events.catalog.tickets import RelationKind, TicketPriority, TicketStatus
from libs.events.registry import DomainEvent
from services.tickets.fields import TicketTypeSchema
from services.tickets.refusals import Refusal

STAFF_ROLES: Final = frozenset({"operator", "admin"})


@dataclass(frozen=True)
class Caller:
    """Who sends a command: a user with a role, or automation (a service, or no role given)."""

    user_id: str
    role: str | None
    automation: bool = False

    @property
    def is_staff(self) -> bool:
        return self.automation or self.role in STAFF_ROLES

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


@dataclass(frozen=True)
class CreateTicket:
    type: str
    schema: TicketTypeSchema | None
    """The type's latest schema, None when no such type exists."""
    type_version: int
    title: str
    description: str | None
    priority: TicketPriority
    fields: dict[str, Any]
    by: Caller


@dataclass(frozen=True)
class ChangeStatus:
    status: TicketStatus
    by: Caller
    via: Literal["change_status", "bulk_close"] = "change_status"


@dataclass(frozen=True)
class Assign:
    assignee_id: str
    assignee_is_staff: bool
    by: Caller


@dataclass(frozen=True)
class SetPriority:
    priority: TicketPriority
    by: Caller


@dataclass(frozen=True)
class Tag:
    tag: str
    by: Caller
    remove: bool = False


@dataclass(frozen=True)
class Comment:
    comment_id: str
    body: str
    internal: bool
    by: Caller


@dataclass(frozen=True)
class Relate:
    relation: RelationKind
    target: str
    target_visible: bool
    """The target exists and the caller may see it."""
    by: Caller


@dataclass(frozen=True)
class Rate:
    score: int
    comment: str | None
    by: Caller


Command = ChangeStatus | Assign | SetPriority | Tag | Comment | Relate | Rate


@dataclass(frozen=True)
class Decision:
    """Events to append and, for a refusal that is itself recorded, the refusal to answer after."""

    events: list[DomainEvent] = field(default_factory=list)
    refusal: Refusal | None = None
