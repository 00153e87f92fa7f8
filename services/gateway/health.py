"""Liveness, readiness (Postgres and NATS reachable) and Prometheus metrics."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from libs.events.horizon import HORIZON_LAG, horizon_holder
from libs.events.task_report import tasks_down_elsewhere
from services.gateway.deps import DepsDep
from services.gateway.errors import error_response, error_responses

router = APIRouter(tags=["operations"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get("/readyz", responses=error_responses(503))
async def readyz(deps: DepsDep) -> Response:
    """Ready when Postgres answers, the NATS connection is up, every supervised task of this
    process runs (a task that failed is named, with since when and why), and the server-wide read
    horizon is not held by a long transaction (its holder is named)."""
    checks: dict[str, str] = {}
    report: dict[str, Any] = {}
    held = False
    try:
        await asyncio.wait_for(deps.pool.fetchval("SELECT 1"), timeout=2)
        checks["postgres"] = "ok"
        holder = await asyncio.wait_for(horizon_holder(deps.pool), timeout=2)
        lag = holder.age_s if holder else 0.0
        HORIZON_LAG.set(lag)
        held = lag >= deps.settings.horizon_unready_s
        report["horizon"] = {
            "status": "held" if held else "ok",
            "lag_seconds": round(lag, 3),
            "held_by": holder.describe() if holder else None,
        }
    except Exception as exc:
        checks.setdefault("postgres", f"unreachable: {type(exc).__name__}")
    checks["nats"] = "ok" if deps.nc.is_connected else "unreachable"
    down: list[dict[str, object]] = [
        {"process": deps.supervisor.process, **state.to_dict()} for state in deps.supervisor.down()
    ]
    with contextlib.suppress(Exception):  # Postgres being down is reported above
        elsewhere = await asyncio.wait_for(
            tasks_down_elsewhere(deps.pool, this_process=deps.supervisor.process), timeout=2
        )
        down.extend(task.to_dict() for task in elsewhere)
    report["tasks"] = {
        "status": "down" if down else "ok",
        "down": down,
        "running": len(deps.supervisor.states()) - len(deps.supervisor.down()),
    }
    if all(v == "ok" for v in checks.values()) and not held and not down:
        return JSONResponse({"status": "ready", "checks": checks, **report})
    return error_response(503, "NOT_READY", "a dependency or a task is not ready", checks | report)


metrics_router = APIRouter(tags=["operations"])
"""/metrics, on the main app only where settings.metrics_on_main_app says (else it has its own
listener, libs/events/devstack.py, or none)."""


@metrics_router.get("/metrics", response_class=PlainTextResponse)
async def metrics() -> Response:
    """Prometheus exposition of this process's metrics."""
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
