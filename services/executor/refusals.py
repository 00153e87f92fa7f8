"""Refusals in the executor's own terms: a code, a sentence and details, no HTTP status.

The RPC edge (`rpc_edge.py`) maps each code to the status a client sees."""

from __future__ import annotations

from typing import Any, Literal

RefusalCode = Literal[
    "FORBIDDEN",
    "NOT_FOUND",
    "NOT_DEAD_LETTERED",
    "CONCURRENT_CHANGE",
    "INVALID_CURSOR",
    "VALIDATION_ERROR",
]


class Refusal(Exception):
    """The service will not do what was asked, and says why."""

    def __init__(self, code: RefusalCode, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.code: RefusalCode = code
        self.message = message
        self.details = details

    def __repr__(self) -> str:
        return f"Refusal({self.code!r}, {self.message!r})"
