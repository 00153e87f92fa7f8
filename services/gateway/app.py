"""The gateway's composition: its SERVICE for the runtime and the FastAPI app it serves.

It keeps HTTP, rate limits and a read model of users, sessions and tokens for authenticating
requests; people's commands and queries are the people service's (services/people/)."""

from __future__ import annotations

from pathlib import Path

from fastapi import Depends, FastAPI

from libs.events.runtime import Deps, Service
from services.gateway import events_api, health, stream, ticket_routes
from services.gateway.errors import API_ERRORS, install_error_handlers, refuse_nul_in_url
from services.gateway.people import routes as people_routes
from services.gateway.people.projection import AUTH_PROJECTION
from services.gateway.secret import require_secret, resolve_secret

ROUTERS = [health.router]
API_ROUTERS = [events_api.router, people_routes.router, ticket_routes.router, stream.router]
"""The /api/v1 routers: each operation documents the error answers any of them may give, and
refuses a NUL character in its path or query (Postgres can store none)."""


def create_app(deps: Deps) -> FastAPI:
    app = FastAPI(
        title="OpsLedger",
        version="0.1.0",
        description=(
            "Ops automation over an append-only event log.\n\n"
            "Authenticate with the session cookie that `POST /api/v1/auth/login` sets, or with an "
            "API token from `POST /api/v1/tokens` sent as `Authorization: Bearer ...` (the "
            "Authorize button on this page takes either)."
        ),
        openapi_url="/openapi.json",
    )
    app.state.deps = deps
    app.state.secret = resolve_secret(deps.settings)
    install_error_handlers(app)
    for router in ROUTERS:
        app.include_router(router)
    for router in API_ROUTERS:
        app.include_router(router, responses=API_ERRORS, dependencies=[Depends(refuse_nul_in_url)])
    return app


SERVICE = Service(
    name="gateway",
    consumers=[AUTH_PROJECTION, stream.TICKET_ACCESS],
    migrations_dir=Path(__file__).parent / "migrations",
    http=create_app,
    preflight=require_secret,
)
