"""Refusals in the rules domain's own terms: a code, a sentence and details, no HTTP status.

The RPC edge (`rpc_edge.py`) maps each code to the status a client sees: `INVALID_RULE` -> 422
with `details: [{path, message}]`, `NOT_FOUND` -> 404, `FORBIDDEN` -> 403, the others 409 or 422."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from libs.contracts.rules import RuleErrorDetail
from libs.events.refusal import DomainRefusal

RefusalCode = Literal[
    "INVALID_RULE",
    "NOT_FOUND",
    "RULE_EXISTS",
    "RULE_ARCHIVED",
    "FORBIDDEN",
    "CONCURRENT_CHANGE",
    "INVALID_CURSOR",
    "VALIDATION_ERROR",
]


class Refusal(DomainRefusal[RefusalCode]):
    """The service will not do what was asked, and says why."""


class InvalidRule(Refusal):
    """A rule definition with errors: every one of them, each with its path."""

    def __init__(self, errors: Sequence[RuleErrorDetail]) -> None:
        count = len(errors)
        noun = "error" if count == 1 else "errors"
        super().__init__("INVALID_RULE", f"the rule is not valid ({count} {noun})", list(errors))
        self.errors: list[RuleErrorDetail] = list(errors)

    def body(self) -> dict[str, Any]:
        """The answer as api.md shows it: `{"error": {"code", "message", "details"}}`."""
        details = [e.model_dump() for e in self.errors]
        return {"error": {"code": self.code, "message": self.message, "details": details}}


def not_found(what: str = "the rule") -> Refusal:
    return Refusal("NOT_FOUND", f"{what} was not found")


def forbidden(message: str) -> Refusal:
    return Refusal("FORBIDDEN", message)


def archived(rule_id: str) -> Refusal:
    message = "the rule is archived; it can no longer change"
    return Refusal("RULE_ARCHIVED", message, {"rule_id": rule_id})
