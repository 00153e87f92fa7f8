"""People routes: register, login, logout, me, API tokens, and the team's roles (admins)."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, Request, Response, status

from libs.events.errors import ServiceError
from services.gateway.auth import AdminUser, CurrentUser, Principal, forbidden
from services.gateway.deps import DepsDep
from services.gateway.errors import error_responses
from services.gateway.people import handlers, queries, ratelimit, security
from services.gateway.people.domain import email_hash
from services.gateway.people.models import (
    LoginIn,
    RegisterIn,
    RoleIn,
    TokenCreatedOut,
    TokenIn,
    TokenOut,
    TokenPage,
    UserOut,
    UserPage,
)
from services.gateway.people.queries import UserRow

router = APIRouter(prefix="/api/v1", tags=["people"])

Limit = Annotated[int, Query(ge=1, le=200)]
Cursor = Annotated[str | None, Query(max_length=64, description="next_cursor of the last page")]
LIMITED = error_responses(429)


def _limits(request: Request) -> ratelimit.RateLimits:
    limits: ratelimit.RateLimits = getattr(
        request.app.state, "rate_limits", ratelimit.DEFAULT_LIMITS
    )
    return limits


def _client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _correlation(request: Request) -> UUID | None:
    try:
        return UUID(request.headers.get("x-correlation-id", ""))
    except ValueError:
        return None


def _out(user: UserRow | Principal) -> UserOut:
    if isinstance(user, Principal):
        return UserOut(id=user.user_id, email=user.email, name=user.name, role=user.role)
    return UserOut(id=user.id, email=user.email, name=user.name, role=user.role)


@router.post(
    "/auth/register", status_code=status.HTTP_201_CREATED, response_model=UserOut, responses=LIMITED
)
async def register(request: Request, deps: DepsDep, body: RegisterIn) -> UserOut:
    """Create an account. The first account ever is the admin; later ones are requesters.
    409 EMAIL_TAKEN when the email has an account."""
    limits = _limits(request)
    await ratelimit.hit(deps.pool, limits.register_per_ip, _client_ip(request))
    await ratelimit.hit(deps.pool, limits.register_per_email, email_hash(body.email))
    user = await handlers.register(
        deps,
        email=body.email,
        name=body.name,
        password=body.password,
        correlation_id=_correlation(request),
    )
    return _out(user)


@router.post("/auth/login", response_model=UserOut, responses=LIMITED)
async def login(request: Request, response: Response, deps: DepsDep, body: LoginIn) -> UserOut:
    """Sign in: sets the session cookie. 401 INVALID_CREDENTIALS for a wrong email or password
    alike; 429 RATE_LIMITED after too many attempts from one address or on one account."""
    limits = _limits(request)
    account = email_hash(body.email)
    await ratelimit.hit(deps.pool, limits.login_per_ip, _client_ip(request))
    # counted before checking, so concurrent guesses cannot overrun it; a success gives it back
    await ratelimit.hit(deps.pool, limits.login_failures_per_account, account)
    user = await handlers.authenticate(deps, email=body.email, password=body.password)
    if user is None:
        raise ServiceError(401, "INVALID_CREDENTIALS", "the email or the password is wrong")
    await ratelimit.refund(deps.pool, limits.login_failures_per_account, account)
    session_id, secret = await handlers.start_session(
        deps, user=user, correlation_id=_correlation(request)
    )
    response.set_cookie(
        security.SESSION_COOKIE,
        security.sign_session(request.app.state.secret, session_id, secret),
        max_age=int(handlers.SESSION_LIFETIME.total_seconds()),
        path="/",
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
    )
    return _out(user)


@router.post("/auth/logout", status_code=status.HTTP_204_NO_CONTENT)
async def logout(request: Request, deps: DepsDep, who: CurrentUser) -> Response:
    """End this session on the server: its cookie stops working, even if replayed."""
    if who.session_id is not None:
        await handlers.end_session(
            deps,
            session_id=who.session_id,
            user_id=who.user_id,
            reason="logout",
            actor=who.actor,
            correlation_id=_correlation(request),
        )
    response = Response(status_code=status.HTTP_204_NO_CONTENT)
    response.delete_cookie(
        security.SESSION_COOKIE,
        path="/",
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
    )
    return response


@router.get("/me", response_model=UserOut)
async def me(who: CurrentUser) -> UserOut:
    return _out(who)


@router.post("/tokens", status_code=status.HTTP_201_CREATED, response_model=TokenCreatedOut)
async def create_token(
    request: Request, deps: DepsDep, who: CurrentUser, body: TokenIn
) -> TokenCreatedOut:
    """A new API token for the caller; the token is in this answer only. Created from a signed-in
    session, so a leaked token cannot mint others that outlive its revocation."""
    if who.session_id is None:
        raise forbidden("API tokens are created from a signed-in session")
    token_id, token = await handlers.create_token(
        deps,
        owner_id=who.user_id,
        name=body.name,
        scopes=body.scopes,
        actor=who.actor,
        correlation_id=_correlation(request),
    )
    return TokenCreatedOut(id=token_id, token=token, name=body.name, scopes=body.scopes)


@router.get("/tokens", response_model=TokenPage)
async def list_tokens(
    deps: DepsDep, who: CurrentUser, limit: Limit = 50, cursor: Cursor = None
) -> TokenPage:
    """The caller's tokens that are not revoked (never the tokens themselves)."""
    rows = await queries.list_tokens(deps.pool, user_id=who.user_id, limit=limit, after=cursor)
    items = [TokenOut(id=r.id, name=r.name, scopes=r.scopes, created_at=r.created_at) for r in rows]
    return TokenPage(items=items, next_cursor=rows[-1].id if len(rows) == limit else None)


@router.delete("/tokens/{token_id}", status_code=status.HTTP_204_NO_CONTENT)
async def revoke_token(request: Request, deps: DepsDep, who: CurrentUser, token_id: UUID) -> None:
    """Revoke one of the caller's tokens; it is refused from the next request on."""
    await handlers.revoke_token(
        deps,
        owner_id=who.user_id,
        token_id=str(token_id),
        actor=who.actor,
        correlation_id=_correlation(request),
    )


@router.get("/users", response_model=UserPage)
async def list_users(
    deps: DepsDep, _: AdminUser, limit: Limit = 50, cursor: Cursor = None
) -> UserPage:
    """The team, in registration order."""
    rows = await queries.list_users(deps.pool, limit=limit, after=cursor)
    return UserPage(
        items=[_out(r) for r in rows], next_cursor=rows[-1].id if len(rows) == limit else None
    )


@router.patch("/users/{user_id}", response_model=UserOut)
async def change_role(
    request: Request, deps: DepsDep, who: AdminUser, user_id: str, body: RoleIn
) -> UserOut:
    """Give a user another role. 409 CANNOT_CHANGE_OWN_ROLE for yourself; 409 LAST_ADMIN when it
    would leave no admin."""
    user = await handlers.change_role(
        deps,
        actor_id=who.user_id,
        user_id=user_id,
        role=body.role.value,
        actor=who.actor,
        correlation_id=_correlation(request),
    )
    return _out(user)
