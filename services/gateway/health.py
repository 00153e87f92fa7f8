"""Liveness, readiness (Postgres and NATS reachable) and Prometheus metrics."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from services.gateway.deps import DepsDep
from services.gateway.errors import error_response, error_responses

router = APIRouter(tags=["operations"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get("/readyz", responses=error_responses(503))
async def readyz(deps: DepsDep) -> Response:
    """Ready when Postgres answers a query and the NATS connection is up."""
    checks: dict[str, str] = {}
    try:
        await asyncio.wait_for(deps.pool.fetchval("SELECT 1"), timeout=2)
        checks["postgres"] = "ok"
    except Exception as exc:
        checks["postgres"] = f"unreachable: {type(exc).__name__}"
    checks["nats"] = "ok" if deps.nc.is_connected else "unreachable"
    if all(v == "ok" for v in checks.values()):
        return JSONResponse({"status": "ready", "checks": checks})
    return error_response(503, "NOT_READY", "a dependency is unreachable", checks)


@router.get("/metrics", response_class=PlainTextResponse)
async def metrics() -> Response:
    """Prometheus exposition of this process's metrics."""
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
