"""The gateway's composition: its SERVICE for the runtime and the FastAPI app it serves.

It keeps HTTP (behind forwarded-header, security-header and CSRF middleware), rate limits and a
read model of users, sessions and tokens for authenticating requests; people's commands and
queries are the people service's (services/people/)."""

from __future__ import annotations

from pathlib import Path

from fastapi import Depends, FastAPI

from libs.events.runtime import Deps, Service
from libs.server_secret import require_secret, resolve_secret
from services.gateway import (
    approval_routes,
    events_api,
    health,
    job_routes,
    link_routes,
    notification_routes,
    rule_routes,
    stream,
    ticket_routes,
)
from services.gateway.body_limit import BodyLimit
from services.gateway.csrf import CrossSiteRefusal
from services.gateway.docs import install_docs
from services.gateway.errors import API_ERRORS, install_error_handlers, refuse_nul_in_url
from services.gateway.forwarded import ForwardedHeaders
from services.gateway.people import routes as people_routes
from services.gateway.people.projection import AUTH_PROJECTION
from services.gateway.security_headers import SecurityHeaders

ROUTERS = [health.router, link_routes.router]
API_ROUTERS = [
    events_api.router,
    people_routes.router,
    ticket_routes.router,
    rule_routes.router,
    job_routes.router,
    notification_routes.router,
    approval_routes.router,
    stream.router,
]
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
        docs_url=None,  # install_docs serves them, with assets from the package, not a CDN
        redoc_url=None,
    )
    settings = deps.settings
    app.state.deps = deps
    app.state.secret = resolve_secret(settings)
    install_error_handlers(app)
    install_docs(app)
    # each middleware wraps those added before it: the last one added sees a request first
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(CrossSiteRefusal, public_url=settings.public_url)
    app.add_middleware(SecurityHeaders, public_url=settings.public_url)
    app.add_middleware(ForwardedHeaders, trusted=settings.trusted_proxy_networks)
    for router in ROUTERS:
        app.include_router(router)
    if settings.metrics_on_main_app:
        app.include_router(health.metrics_router)
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
