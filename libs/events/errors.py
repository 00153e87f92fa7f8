"""ServiceError: the one error shape services answer with and the gateway turns into HTTP."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError


class ConfigurationError(RuntimeError):
    """The deployment is misconfigured; the process refuses to start and says why."""


class ServiceError(Exception):
    """A refusal a client should see: HTTP status, UPPER_SNAKE code, a sentence, details."""

    def __init__(self, status: int, code: str, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details is not None:
            body["details"] = self.details
        return body

    @classmethod
    def from_validation(cls, exc: ValidationError) -> ServiceError:
        details = {
            ".".join(str(p) for p in err["loc"]) or "body": err["msg"] for err in exc.errors()
        }
        return cls(422, "VALIDATION_ERROR", "the request body is not valid", details)


def not_found(what: str) -> ServiceError:
    return ServiceError(404, "NOT_FOUND", f"{what} was not found")


def conflict(code: str, message: str, details: Any = None) -> ServiceError:
    return ServiceError(409, code, message, details)
