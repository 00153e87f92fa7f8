"""Tickets, pure: decide(state, command) -> events, the transition table and the approval lock.

While an approval is pending every status change is refused, and the refusal is itself an event.
A refusal is a `Refusal` (a code and a message, no HTTP status): raised, or returned in the
Decision when it is recorded; the RPC edge maps its code to a status."""

from __future__ import annotations

import re
from typing import Any, Final

from libs.contracts.tickets import Relation
from libs.events.catalog.tickets import (
    TicketAssigned,
    TicketChangeRefused,
    TicketCommented,
    TicketCreated,
    TicketPriorityChanged,
    TicketRated,
    TicketRelated,
    TicketStatusChanged,
    TicketTagged,
    TicketTypeDefined,
    TicketTypeRevised,
    TicketUntagged,
)
from libs.events.registry import DomainEvent
from services.tickets.commands import (
    Assign,
    Caller,
    ChangeStatus,
    Command,
    Comment,
    CreateTicket,
    Decision,
    Rate,
    Relate,
    SetPriority,
    Tag,
)
from services.tickets.fields import BUILTIN_TYPES, FieldValidationError, TicketTypeSchema
from services.tickets.policy import visible
from services.tickets.refusals import Refusal, forbidden, invalid_assignee, not_found
from services.tickets.state import TicketState

KEY_PREFIX: Final = "OPS"
MAX_TAGS: Final = 50
MAX_RELATIONS: Final = 100

TRANSITIONS: Final[dict[str, frozenset[str]]] = {
    "open": frozenset({"in_progress", "waiting_for_requester", "resolved", "closed"}),
    "in_progress": frozenset({"waiting_for_requester", "resolved", "open", "closed"}),
    "waiting_for_requester": frozenset({"in_progress", "open", "resolved", "closed"}),
    "resolved": frozenset({"closed", "open"}),
    "closed": frozenset({"open"}),
}
"""Every allowed status change; anything else (including "to the same status") is refused."""

DONE: Final = frozenset({"resolved", "closed"})


def ticket_key(number: int) -> str:
    return f"{KEY_PREFIX}-{number}"


def normalise_tag(raw: str) -> str:
    """Lowercase slug: letters, digits and single dashes, at most 50 characters."""
    tag = re.sub(r"-{2,}", "-", re.sub(r"[^a-z0-9-]", "", re.sub(r"[\s_]+", "-", raw.lower())))
    tag = tag.strip("-")
    if not tag or len(tag) > 50:
        raise Refusal("INVALID_TAG", "a tag is 1 to 50 letters, digits or dashes", {"tag": raw})
    return tag


def decide_create(cmd: CreateTicket, *, number: int) -> list[DomainEvent]:
    """Open ticket `number`: the type must exist and every field value must fit its schema."""
    if cmd.schema is None:
        raise Refusal("UNKNOWN_TYPE", f"there is no ticket type {cmd.type!r}", {"type": cmd.type})
    try:
        values = cmd.schema.validate_values(cmd.fields)
    except FieldValidationError as exc:
        raise Refusal("INVALID_FIELDS", "some fields are not valid", exc.details) from None
    return [
        TicketCreated(
            key=ticket_key(number),
            number=number,
            type=cmd.type,
            type_version=cmd.type_version,
            title=cmd.title,
            description=cmd.description,
            priority=cmd.priority,
            requester_id=cmd.by.user_id,
            fields=values,
        )
    ]


def decide(state: TicketState | None, cmd: Command) -> Decision:
    """What happens when `cmd` meets the ticket: events to append, or a Refusal raised."""
    ticket = visible(state, cmd.by)
    by = cmd.by.user_id
    match cmd:
        case ChangeStatus():
            return _change_status(ticket, cmd)
        case Assign():
            _staff_only(cmd.by, "assign tickets")
            if not cmd.assignee_is_staff:
                raise invalid_assignee(cmd.assignee_id)
            if ticket.assignee_id == cmd.assignee_id:
                return Decision()
            previous = ticket.assignee_id
            return Decision(
                [TicketAssigned(assignee_id=cmd.assignee_id, previous_assignee_id=previous, by=by)]
            )
        case SetPriority():
            _staff_only(cmd.by, "change the priority")
            if ticket.priority == cmd.priority:
                return Decision()
            return Decision(
                [TicketPriorityChanged(priority=cmd.priority, previous=ticket.priority, by=by)]
            )
        case Tag(remove=False):
            if cmd.tag in ticket.tags:
                return Decision()
            if len(ticket.tags) >= MAX_TAGS:
                raise Refusal("TOO_MANY_TAGS", f"a ticket has at most {MAX_TAGS} tags")
            return Decision([TicketTagged(tag=cmd.tag, by=by)])
        case Tag(remove=True):
            return Decision([TicketUntagged(tag=cmd.tag, by=by)] if cmd.tag in ticket.tags else [])
        case Comment():
            if cmd.internal and not cmd.by.is_staff:
                raise forbidden("only staff write internal comments")
            return Decision(
                [
                    TicketCommented(
                        comment_id=cmd.comment_id,
                        author_id=by,
                        body=cmd.body,
                        internal=cmd.internal,
                    )
                ]
            )
        case Relate():
            return _relate(ticket, cmd)
        case Rate():
            return _rate(ticket, cmd)
    raise TypeError(f"unknown command {cmd!r}")


def _staff_only(by: Caller, what: str) -> None:
    if not by.is_staff:
        raise forbidden(f"only staff may {what}")


def _change_status(ticket: TicketState, cmd: ChangeStatus) -> Decision:
    reopen = cmd.status == "open" and ticket.status in DONE
    if not cmd.by.is_staff and not (reopen and ticket.requester_id == cmd.by.user_id):
        raise forbidden("requesters may only reopen their own resolved or closed tickets")
    if cmd.status not in TRANSITIONS[ticket.status]:
        raise Refusal(
            "INVALID_TRANSITION",
            f"a ticket cannot go from {ticket.status} to {cmd.status}",
            {
                "from": ticket.status,
                "to": cmd.status,
                "allowed": sorted(TRANSITIONS[ticket.status]),
            },
        )
    if ticket.pending:
        pending = ticket.pending[0]
        via = "automation" if cmd.by.automation else ("reopen" if not cmd.by.is_staff else cmd.via)
        refused = TicketChangeRefused(
            attempted=cmd.status,
            reason="PENDING_APPROVAL",
            approval_id=pending.approval_id,
            by=cmd.by.user_id,
            via=via,
        )
        error = Refusal(
            "PENDING_APPROVAL",
            f"the ticket is locked: {pending.action!r} waits for approval",
            {"approval_id": pending.approval_id, "action": pending.action},
        )
        return Decision([refused], refusal=error)
    changed = TicketStatusChanged(
        from_status=ticket.status, to_status=cmd.status, by=cmd.by.user_id
    )
    return Decision([changed])


def _relate(ticket: TicketState, cmd: Relate) -> Decision:
    if cmd.target == ticket.key:
        raise Refusal(
            "INVALID_RELATION", "a ticket cannot relate to itself", {"target": cmd.target}
        )
    if not cmd.target_visible:
        raise Refusal("INVALID_RELATION", "there is no such ticket", {"target": cmd.target})
    if Relation(relation=cmd.relation, key=cmd.target) in ticket.relations:
        return Decision()
    if len(ticket.relations) >= MAX_RELATIONS:
        raise Refusal("TOO_MANY_RELATIONS", f"a ticket has at most {MAX_RELATIONS} relations")
    return Decision([TicketRelated(relation=cmd.relation, target=cmd.target, by=cmd.by.user_id)])


def _rate(ticket: TicketState, cmd: Rate) -> Decision:
    if cmd.by.automation or ticket.requester_id != cmd.by.user_id:
        raise forbidden("only the ticket's requester rates it")
    if ticket.status not in DONE:
        raise Refusal("NOT_RESOLVED", "a ticket is rated once it is resolved or closed")
    if ticket.rating is not None:
        raise Refusal("ALREADY_RATED", "this ticket has already been rated")
    return Decision([TicketRated(score=cmd.score, comment=cmd.comment, by=cmd.by.user_id)])


def _dump_fields(schema: TicketTypeSchema) -> list[dict[str, Any]]:
    return [spec.model_dump(mode="json", exclude_none=True) for spec in schema.fields]


def decide_define_type(
    *, exists: bool, key: str, name: str, schema: TicketTypeSchema, builtin: bool
) -> TicketTypeDefined:
    """Version 1 of a type; a key in use (or reserved by a built-in type) is refused."""
    if exists or (key in BUILTIN_TYPES and not builtin):
        raise Refusal("TYPE_EXISTS", f"a ticket type {key!r} already exists", {"key": key})
    return TicketTypeDefined(key=key, name=name, fields=_dump_fields(schema), builtin=builtin)


def decide_revise_type(
    *, current_name: str | None, version: int, key: str, name: str | None, schema: TicketTypeSchema
) -> TicketTypeRevised:
    """The next schema version of an existing type (its name kept unless a new one is given)."""
    if current_name is None or version == 0:
        raise not_found("the ticket type")
    return TicketTypeRevised(
        key=key, name=name or current_name, version=version + 1, fields=_dump_fields(schema)
    )
