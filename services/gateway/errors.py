"""Every error leaves the gateway as {"error": {"code", "message", "details"?}}, never a bare 500
for bad input."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from libs.events.errors import ServiceError
from libs.events.inputs import input_problem

log = logging.getLogger(__name__)

_STATUS_CODES = {
    400: "BAD_REQUEST",
    401: "UNAUTHENTICATED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    409: "CONFLICT",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
    422: "VALIDATION_ERROR",
    429: "RATE_LIMITED",
    503: "SERVICE_UNAVAILABLE",
}


_DESCRIPTIONS = {
    400: "the request is malformed (e.g. its body is not JSON, or a cursor is not one we gave)",
    401: "no valid session cookie or API token",
    403: "the caller may not do this (role, token scope)",
    404: "what the path names does not exist (or is not the caller's to see)",
    409: "the request conflicts with the current state; the code says how",
    413: "the request body is over the size limit (PAYLOAD_TOO_LARGE)",
    422: "the request is not valid; details name the fields",
    429: "rate limited; see Retry-After",
    502: "a service's answer could not be carried back (our fault, logged)",
    503: "a service or dependency is unavailable",
    504: "a service did not answer in time",
}


class ErrorBody(BaseModel):
    code: str = Field(description="UPPER_SNAKE_CASE, stable: branch on this")
    message: str = Field(description="a sentence for people")
    details: Any = Field(default=None, description="more about the error, e.g. fields at fault")


class ErrorOut(BaseModel):
    """The body of every error answer."""

    error: ErrorBody


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` declaring error answers (the ErrorOut shape) with these statuses."""
    return {s: {"model": ErrorOut, "description": _DESCRIPTIONS[s]} for s in statuses}


API_ERRORS = error_responses(400, 401, 403, 404, 409, 413, 422)
"""What any /api/v1 operation may answer besides its success."""


def error_response(
    status: int,
    code: str,
    message: str,
    details: Any = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {"code": code, "message": message}
    if details is not None:
        body["details"] = details
    return JSONResponse({"error": body}, status_code=status, headers=headers)


async def refuse_nul_in_url(request: Request) -> None:
    """Dependency of the /api/v1 routes: 422 for a NUL (or anything else `input_problem`
    refuses) in a path or query parameter (bodies: the input models, or the service behind,
    refuse it) before any of them reaches a query. `async` so that FastAPI runs it on the event
    loop, not in a worker thread."""
    url = [list(request.path_params.values()), request.query_params.multi_items()]
    problem = input_problem(url)
    if problem is not None:
        raise ServiceError(422, "VALIDATION_ERROR", "the request is not valid", {"url": problem})


def _validation_details(exc: RequestValidationError) -> dict[str, str]:
    details: dict[str, str] = {}
    for err in exc.errors():
        loc = [str(p) for p in err.get("loc", ()) if p not in ("body",)]
        details[".".join(loc) or "body"] = str(err.get("msg", "invalid"))
    return details


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ServiceError)
    async def on_service_error(_: Request, exc: ServiceError) -> JSONResponse:
        headers = None
        if exc.status == 429 and isinstance(exc.details, dict) and "retry_after" in exc.details:
            headers = {"Retry-After": str(exc.details["retry_after"])}
        return error_response(exc.status, exc.code, exc.message, exc.details, headers)

    @app.exception_handler(RequestValidationError)
    async def on_validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(
            422, "VALIDATION_ERROR", "the request is not valid", _validation_details(exc)
        )

    @app.exception_handler(StarletteHTTPException)
    async def on_http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _STATUS_CODES.get(exc.status_code, "ERROR")
        message = exc.detail if isinstance(exc.detail, str) else code.lower().replace("_", " ")
        return error_response(
            exc.status_code, code, message, headers=dict(exc.headers) if exc.headers else None
        )

    @app.exception_handler(Exception)
    async def on_unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", exc_info=exc)
        return error_response(500, "INTERNAL", "something went wrong on our side")
