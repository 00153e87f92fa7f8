"""People routes: register, login, logout, me, API tokens, and the team (admins: roles,
deactivation); the caller's own sessions are session_routes'.

Rate limits and the session cookie are the gateway's; everything else is asked of the people
service (libs/contracts/people.py) over NATS request/reply."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, Request, Response, status

from libs.contracts import people as contract
from libs.contracts.people import (
    LoginIn,
    MemberOut,
    RegisterIn,
    TokenCreatedOut,
    TokenIn,
    TokenPage,
    UserOut,
    UserPage,
    UserPatch,
    email_hash,
)
from libs.events.errors import ServiceError
from services.gateway.auth import AdminUser, CurrentUser
from services.gateway.deps import DepsDep
from services.gateway.errors import error_responses
from services.gateway.people import lockout, ratelimit, security, session_routes
from services.gateway.people.calls import command, query
from services.gateway.people.quotas import QUOTA_RESPONSES, TOKENS_QUOTA

# every people operation but /me is answered by the people service, over NATS
router = APIRouter(prefix="/api/v1", tags=["people"], responses=error_responses(503, 504))

Limit = Annotated[int, Query(ge=1, le=200)]
Cursor = Annotated[str | None, Query(max_length=64, description="next_cursor of the last page")]
LIMITED = error_responses(429)
router.include_router(session_routes.router)
_limits = ratelimit.limits_of


def _client_ip(request: Request) -> str:
    return ratelimit.address_subject(request.client.host) if request.client else "unknown"


def _correlation(request: Request) -> str | None:
    return request.headers.get("x-correlation-id")


@router.post(
    "/auth/register", status_code=status.HTTP_201_CREATED, response_model=UserOut, responses=LIMITED
)
async def register(request: Request, deps: DepsDep, body: RegisterIn) -> UserOut:
    """Create an account. The first account ever is the admin; later ones are requesters.
    409 EMAIL_TAKEN when the email has an account."""
    limits = _limits(request)
    await ratelimit.hit(deps.pool, limits.register_per_ip, _client_ip(request))
    await ratelimit.hit(deps.pool, limits.register_per_email, email_hash(body.email))
    registered = await command(
        deps, contract.REGISTER, body, who=None, correlation_id=_correlation(request)
    )
    return registered.user


@router.post("/auth/login", response_model=UserOut, responses=LIMITED)
async def login(request: Request, response: Response, deps: DepsDep, body: LoginIn) -> UserOut:
    """Sign in: sets the session cookie (`__Host-opsledger_session` over https, Secure, Path=/,
    no Domain; `opsledger_session` over plain http). 401 INVALID_CREDENTIALS for a wrong email
    or password alike; 403 ACCOUNT_DISABLED for a deactivated account (only with its right
    password); 429 RATE_LIMITED after too many attempts or failures from this address
    (services/gateway/people/lockout.py: failures elsewhere do not lock the owner out)."""
    limits = _limits(request)
    attempt = lockout.Attempt(account=email_hash(body.email), ip=_client_ip(request))
    await lockout.before_password(deps.pool, limits, attempt)
    try:
        opened = await command(
            deps, contract.LOGIN, body, who=None, correlation_id=_correlation(request)
        )
    except ServiceError as refused:
        if refused.code == "ACCOUNT_DISABLED":  # the password was right: no failed guess
            await lockout.succeeded(deps.pool, limits, attempt)
        raise
    await lockout.succeeded(deps.pool, limits, attempt)
    lifetime = (opened.expires_at - datetime.now(UTC)).total_seconds()
    response.set_cookie(
        security.session_cookie(request.url.scheme),
        security.sign_session(request.app.state.secret, opened.session_id, opened.session_secret),
        max_age=max(0, round(lifetime)),
        path="/",
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
    )
    return opened.user


@router.post("/auth/logout", status_code=status.HTTP_204_NO_CONTENT)
async def logout(request: Request, deps: DepsDep, who: CurrentUser) -> Response:
    """End this session on the server: its cookie stops working, even if replayed."""
    if who.session_id is not None:
        await command(
            deps,
            contract.LOGOUT,
            contract.LogoutIn(session_id=who.session_id),
            who=who,
            correlation_id=_correlation(request),
        )
    response = Response(status_code=status.HTTP_204_NO_CONTENT)
    response.delete_cookie(
        security.session_cookie(request.url.scheme),
        path="/",
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
    )
    return response


@router.get("/me", response_model=UserOut)
async def me(who: CurrentUser) -> UserOut:
    return UserOut(id=who.user_id, email=who.email, name=who.name, role=who.role.value)


@router.post(
    "/tokens",
    status_code=status.HTTP_201_CREATED,
    response_model=TokenCreatedOut,
    response_model_exclude_none=True,  # `expires_at` only for a token that expires
    responses=QUOTA_RESPONSES,
    dependencies=[TOKENS_QUOTA],
)
async def create_token(
    request: Request, deps: DepsDep, who: CurrentUser, body: TokenIn
) -> TokenCreatedOut:
    """A new API token for the caller; the token is in this answer only. Created from a signed-in
    session, so a leaked token cannot mint others that outlive its revocation. Optional
    `expires_at` or `expires_in` (seconds): refused with 401 everywhere once past. 403
    ACCOUNT_DISABLED when the caller was deactivated while this was on its way. 429
    RATE_LIMITED past `tokens-user` creations; 429 TOO_MANY_TOKENS at the live-token cap."""
    issued = await command(
        deps, contract.CREATE_TOKEN, body, who=who, correlation_id=_correlation(request)
    )
    return issued.token


@router.get("/tokens", response_model=TokenPage)
async def list_tokens(
    request: Request, deps: DepsDep, who: CurrentUser, limit: Limit = 50, cursor: Cursor = None
) -> TokenPage:
    """The caller's live tokens: neither revoked nor expired (never the tokens themselves)."""
    page = contract.PageIn(limit=limit, cursor=cursor)
    return await query(
        deps, contract.LIST_TOKENS, page, who=who, correlation_id=_correlation(request)
    )


@router.delete("/tokens/{token_id}", status_code=status.HTTP_204_NO_CONTENT)
async def revoke_token(request: Request, deps: DepsDep, who: CurrentUser, token_id: UUID) -> None:
    """Revoke one of the caller's tokens; it is refused from the next request on."""
    await command(
        deps,
        contract.REVOKE_TOKEN,
        contract.TokenRef(token_id=token_id),
        who=who,
        correlation_id=_correlation(request),
    )


@router.get("/users", response_model=UserPage)
async def list_users(
    request: Request, deps: DepsDep, who: AdminUser, limit: Limit = 50, cursor: Cursor = None
) -> UserPage:
    """The team, in registration order; deactivated users too (`active: false`)."""
    page = contract.PageIn(limit=limit, cursor=cursor)
    return await query(
        deps, contract.LIST_USERS, page, who=who, correlation_id=_correlation(request)
    )


@router.patch("/users/{user_id}", response_model=MemberOut)
async def update_user(
    request: Request, deps: DepsDep, who: AdminUser, user_id: str, body: UserPatch
) -> MemberOut:
    """Give a user another `role`, and/or deactivate them (`"active": false`: every session and
    token of theirs stops working at once, login is refused, their history stays) or reactivate
    them (`true`: they may sign in again; old sessions and tokens stay ended). 409
    CANNOT_CHANGE_OWN_ROLE / CANNOT_DEACTIVATE_SELF for yourself; 409 LAST_ADMIN when it would
    leave no active admin."""
    correlation_id = _correlation(request)
    changed: contract.MemberChanged | None = None
    if body.role is not None:
        change = contract.ChangeRoleIn(user_id=user_id, role=body.role)
        changed = await command(
            deps, contract.CHANGE_ROLE, change, who=who, correlation_id=correlation_id
        )
    if body.active is not None:
        activation = contract.SetActiveIn(user_id=user_id, active=body.active)
        changed = await command(
            deps, contract.SET_ACTIVE, activation, who=who, correlation_id=correlation_id
        )
    if changed is None:  # UserPatch refuses a body with neither
        raise ServiceError(422, "VALIDATION_ERROR", "give a role, active, or both")
    return changed.user
