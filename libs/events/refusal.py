"""The base of every service's domain refusal: a code from that service's own list, a sentence
and details, never an HTTP status (each service's RPC edge maps its codes to statuses)."""

from __future__ import annotations

from typing import Any, Generic, TypeVar

Code = TypeVar("Code", bound=str)


class DomainRefusal(Exception, Generic[Code]):
    """The service will not do what was asked, and says why."""

    def __init__(self, code: Code, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.code: Code = code
        self.message = message
        self.details = details

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.code!r}, {self.message!r})"
