"""Who is calling: the session cookie or a Bearer API token, resolved to a Principal with the
user's current role (read on every request, so role changes apply at once). Resolved from the
gateway's own read model of the people service's events (services/gateway/people/)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel

from libs.contracts.people import digest, parse_token
from libs.events.envelope import Actor, ActorKind
from libs.events.errors import ServiceError
from libs.events.runtime import Deps
from services.gateway.deps import DepsDep
from services.gateway.people import queries, security
from services.gateway.people.queries import UserRow


class Role(StrEnum):
    REQUESTER = "requester"
    OPERATOR = "operator"
    ADMIN = "admin"


class Principal(BaseModel, frozen=True):
    """An authenticated caller: the user, and the token they used (None for a session)."""

    user_id: str
    email: str
    name: str
    role: Role
    token_id: str | None = None
    scopes: frozenset[str] = frozenset()
    """A token's scopes ("api", "ingest"); empty for a browser session."""
    session_id: str | None = None

    @property
    def is_staff(self) -> bool:
        return self.role in (Role.OPERATOR, Role.ADMIN)

    @property
    def is_admin(self) -> bool:
        return self.role == Role.ADMIN

    @property
    def actor(self) -> Actor:
        if self.token_id is not None:
            return Actor(kind=ActorKind.TOKEN, id=self.token_id)
        return Actor(kind=ActorKind.USER, id=self.user_id)


def unauthenticated(message: str = "sign in or send a valid API token") -> ServiceError:
    return ServiceError(401, "UNAUTHENTICATED", message)


def forbidden(message: str) -> ServiceError:
    return ServiceError(403, "FORBIDDEN", message)


def _principal(user: UserRow, **extra: object) -> Principal:
    return Principal(
        user_id=user.id, email=user.email, name=user.name, role=Role(user.role), **extra
    )


async def _from_token(deps: Deps, value: str) -> Principal | None:
    token_id = parse_token(value)
    if token_id is None:
        return None
    live = await queries.live_token(deps.pool, token_id)
    if live is None:
        return None
    row, user = live.token, live.user
    if row.revoked or not security.same(digest(value), row.token_hash) or user is None:
        return None
    return _principal(user, token_id=row.id, scopes=frozenset(row.scopes))


async def _from_session(
    deps: Deps, secret: bytes, value: str, *, touch: bool = True
) -> Principal | None:
    parts = security.read_session_cookie(secret, value)
    if parts is None:
        return None
    session_id, session_secret = parts
    live = await queries.live_session(deps.pool, session_id)
    if live is None or not security.same(digest(session_secret), live.secret_hash):
        return None
    if touch and live.needs_touch:
        await queries.touch_session(deps.pool, session_id)
    return _principal(live.user, session_id=session_id)


@dataclass(frozen=True)
class Credential:
    """What a request authenticates with: a Bearer token (`token` set, '' when malformed) or
    else the session cookie (`cookie`), kept so a long-lived answer (the live stream) can ask
    again whether it still holds."""

    token: str | None = None
    cookie: str | None = None

    @classmethod
    def of(cls, request: Request) -> Credential:
        token = bearer(request)
        if token is not None:
            return cls(token=token)
        name = security.session_cookie(request.url.scheme)  # over https only the __Host- one
        return cls(cookie=request.cookies.get(name) or None)


async def authenticate(
    deps: Deps, secret: bytes, credential: Credential, *, touch: bool = True
) -> Principal | None:
    """The caller `credential` stands for now (current role included), or None when it does
    not or no longer does (unknown, revoked, logged out, expired). A Bearer header, when sent,
    is the only credential considered: a malformed one must not fall back to the cookie.
    `touch=False` checks without counting as use of the session (its idle expiry runs on)."""
    if credential.token is not None:
        return await _from_token(deps, credential.token) if credential.token else None
    if credential.cookie:
        return await _from_session(deps, secret, credential.cookie, touch=touch)
    return None


def may_use_api(who: Principal | None) -> bool:
    """Whether `who` may call the API routes: a session, or a token with the "api" scope."""
    return who is not None and (who.token_id is None or "api" in who.scopes)


# The two ways to authenticate, declared as OpenAPI security schemes (so the API docs page can
# authorise, and clients can be generated); every operation that needs a caller lists both.
SESSION_SCHEME = APIKeyCookie(
    name=security.SESSION_COOKIE,
    scheme_name="session",
    description="The session cookie that POST /api/v1/auth/login sets (browsers send it). "
    f"Over https it is named `{security.HOST_SESSION_COOKIE}`, and only that name is read.",
    auto_error=False,
)
TOKEN_SCHEME = HTTPBearer(
    scheme_name="token",
    description="An API token from POST /api/v1/tokens, sent as `Authorization: Bearer olt_...`. "
    "When sent, it is the only credential considered.",
    auto_error=False,
)


def bearer(request: Request) -> str | None:
    """The credentials of an `Authorization: Bearer ...` header ('' when malformed)."""
    header = request.headers.get("authorization")
    if header is None:
        return None
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" else ""


async def _caller(
    request: Request,
    deps: DepsDep,
    cookie: Annotated[str | None, Security(SESSION_SCHEME)],
    _: Annotated[HTTPAuthorizationCredentials | None, Security(TOKEN_SCHEME)],
) -> Principal | None:
    """The caller, or None for no or invalid credentials (the Bearer header is read by
    Credential.of, not from TOKEN_SCHEME, which ignores a malformed one)."""
    return await authenticate(deps, request.app.state.secret, Credential.of(request))


Caller = Annotated[Principal | None, Depends(_caller)]


def _api_access(who: Principal) -> Principal:
    if who.token_id is not None and "api" not in who.scopes:
        raise forbidden("this token lacks the 'api' scope")
    return who


async def _current_user(who: Caller) -> Principal:
    if who is None:
        raise unauthenticated()
    return _api_access(who)


async def _optional_user(who: Caller) -> Principal | None:
    return who if may_use_api(who) else None


CurrentUser = Annotated[Principal, Depends(_current_user)]
"""A signed-in user (session cookie) or a Bearer token with the "api" scope."""
OptionalUser = Annotated[Principal | None, Depends(_optional_user)]


async def _staff_user(who: CurrentUser) -> Principal:
    if not who.is_staff:
        raise forbidden("this needs the operator or admin role")
    return who


async def _admin_user(who: CurrentUser) -> Principal:
    if who.role != Role.ADMIN:
        raise forbidden("this needs the admin role")
    return who


async def _ingest_token(who: Caller) -> Principal:
    if who is None or who.token_id is None:
        raise unauthenticated("send an API token with the 'ingest' scope")
    if "ingest" not in who.scopes:
        raise forbidden("this token lacks the 'ingest' scope")
    return who


StaffUser = Annotated[Principal, Depends(_staff_user)]
"""An operator or admin."""
AdminUser = Annotated[Principal, Depends(_admin_user)]
IngestToken = Annotated[Principal, Depends(_ingest_token)]
"""A Bearer token with the "ingest" scope (monitoring systems posting alerts)."""
