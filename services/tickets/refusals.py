"""Refusals in the tickets domain's own terms: a code, a sentence and details, no HTTP status.

The RPC edge (`rpc_edge.py`) maps each code to the status a client sees; `RefusalCode` lists
every code the service refuses with, so that table cannot miss one."""

from __future__ import annotations

from typing import Literal

from libs.events.refusal import DomainRefusal

RefusalCode = Literal[
    "FORBIDDEN",
    "NOT_FOUND",
    "INVALID_TRANSITION",
    "PENDING_APPROVAL",
    "NOT_RESOLVED",
    "ALREADY_RATED",
    "TYPE_EXISTS",
    "CONCURRENT_CHANGE",
    "UNKNOWN_TYPE",
    "INVALID_FIELDS",
    "INVALID_ASSIGNEE",
    "INVALID_TAG",
    "TOO_MANY_TAGS",
    "INVALID_RELATION",
    "TOO_MANY_RELATIONS",
    "INVALID_CURSOR",
    "VALIDATION_ERROR",
]


class Refusal(DomainRefusal[RefusalCode]):
    """The service will not do what was asked, and says why (raised, or recorded in a Decision)."""


def forbidden(message: str) -> Refusal:
    return Refusal("FORBIDDEN", message)


def not_found(what: str) -> Refusal:
    return Refusal("NOT_FOUND", f"{what} was not found")


def invalid_assignee(assignee_id: str) -> Refusal:
    return Refusal(
        "INVALID_ASSIGNEE",
        "tickets can only be assigned to operators or admins",
        {"assignee_id": assignee_id},
    )
