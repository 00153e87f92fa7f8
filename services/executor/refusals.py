"""Refusals in the executor's own terms: a code, a sentence and details, no HTTP status.

The RPC edge (`rpc_edge.py`) maps each code to the status a client sees."""

from __future__ import annotations

from typing import Literal

from libs.events.refusal import DomainRefusal

RefusalCode = Literal[
    "FORBIDDEN",
    "NOT_FOUND",
    "NOT_DEAD_LETTERED",
    "CONCURRENT_CHANGE",
    "INVALID_CURSOR",
    "VALIDATION_ERROR",
    "NOT_A_SUBSCRIPTION",
    "INVALID_POSITION",
]


class Refusal(DomainRefusal[RefusalCode]):
    """The service will not do what was asked, and says why."""
