"""Refusals in the approvals service's own terms: a code, a sentence and details, no HTTP
status. The RPC edge (`rpc_edge.py`) maps each code to the status a client sees."""

from __future__ import annotations

from typing import Literal

from libs.events.refusal import DomainRefusal

RefusalCode = Literal[
    "FORBIDDEN",
    "NOT_FOUND",
    "NOT_AN_APPROVER",
    "ALREADY_DECIDED",
    "LINK_USED",
    "CONCURRENT_CHANGE",
    "INVALID_CURSOR",
    "VALIDATION_ERROR",
]


class Refusal(DomainRefusal[RefusalCode]):
    """The service will not do what was asked, and says why."""
