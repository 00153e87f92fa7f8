"""People commands: load, decide, append. The people projection is applied in the same
transaction (read-your-writes), so a login is usable and a logout final on the next request."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID

from libs.events.catalog.people import (
    AdminBootstrapped,
    RoleName,
    Scope,
    SessionEnded,
    SessionEndReason,
    SessionStarted,
    TokenCreated,
    TokenRevoked,
    UserEmailClaimed,
    UserPasswordSet,
)
from libs.events.consumers import Dispatcher, append_and_project
from libs.events.db import Conn
from libs.events.envelope import Actor, ActorKind, Metadata, new_id
from libs.events.errors import conflict, not_found
from libs.events.registry import REGISTRY, DomainEvent
from libs.events.runtime import Deps
from libs.events.store import ANY, NO_STREAM, ConcurrencyError
from services.gateway.people import queries, security
from services.gateway.people.domain import (
    ADMINS_STREAM,
    decide_role_change,
    email_hash,
    email_stream,
    fold_admins,
    fold_user,
    normalise_email,
    registration,
    session_stream,
    token_stream,
    user_stream,
)
from services.gateway.people.projection import PEOPLE_PROJECTION
from services.gateway.people.queries import UserRow

SESSION_LIFETIME = timedelta(days=7)
"""Absolute expiry of a session, however active."""
ROLE_CHANGE_ATTEMPTS = 5


def metadata(actor: Actor, correlation_id: UUID | None) -> Metadata:
    return Metadata(actor=actor, correlation_id=correlation_id or new_id(), service="gateway")


def projection(deps: Deps) -> Dispatcher:
    return Dispatcher(
        consumer=PEOPLE_PROJECTION, service="gateway", store=deps.store, settings=deps.settings
    )


async def _append(
    deps: Deps,
    conn: Conn,
    stream_id: str,
    events: list[DomainEvent],
    *,
    expected_version: int,
    meta: Metadata,
) -> None:
    await append_and_project(
        deps.store,
        conn,
        [projection(deps)],
        stream_id,
        events,
        expected_version=expected_version,
        metadata=meta,
    )


async def register(
    deps: Deps, *, email: str, name: str, password: str, correlation_id: UUID | None
) -> UserRow:
    """A new user. The email's claim stream makes it unique; the admins stream's first event
    makes its writer the first admin. Both are decided by the store, never by counting rows."""
    email = normalise_email(email)
    password_hash = await security.hash_password(password)
    user_id = str(new_id())
    meta = metadata(Actor(kind=ActorKind.USER, id=user_id), correlation_id)
    async with deps.store.transaction() as conn:
        try:
            claim = UserEmailClaimed(email_hash=email_hash(email), user_id=user_id)
            await deps.store.append(
                email_stream(email), [claim], expected_version=NO_STREAM, metadata=meta, conn=conn
            )
        except ConcurrencyError:
            raise conflict("EMAIL_TAKEN", "an account with this email already exists") from None
        first_admin = await _claim_first_admin(deps, conn, user_id, meta)
        events = registration(
            user_id=user_id,
            email=email,
            name=name,
            password_hash=password_hash,
            first_admin=first_admin,
        )
        await _append(
            deps, conn, user_stream(user_id), events, expected_version=NO_STREAM, meta=meta
        )
    return UserRow(id=user_id, email=email, name=name, role="admin" if first_admin else "requester")


async def _claim_first_admin(deps: Deps, conn: Conn, user_id: str, meta: Metadata) -> bool:
    if await deps.store.stream_version(ADMINS_STREAM, conn=conn) > 0:
        return False  # the common case, answered without contending for the stream
    try:
        await deps.store.append(
            ADMINS_STREAM,
            [AdminBootstrapped(user_id=user_id)],
            expected_version=NO_STREAM,
            metadata=meta,
            conn=conn,
        )
    except ConcurrencyError:
        return False  # another registration won the race
    return True


async def authenticate(deps: Deps, *, email: str, password: str) -> UserRow | None:
    """The user when the password is theirs; None otherwise, in about the same time."""
    found = await queries.credentials(deps.pool, normalise_email(email))
    ok = await security.verify_password(found[1] if found else None, password)
    if not ok or found is None:
        return None
    user, stored = found
    if security.needs_rehash(stored):  # hashing parameters were raised since: upgrade it
        fresh = UserPasswordSet(
            user_id=user.id, password_hash=await security.hash_password(password)
        )
        meta = metadata(Actor(kind=ActorKind.USER, id=user.id), None)
        async with deps.store.transaction() as conn:
            await _append(
                deps, conn, user_stream(user.id), [fresh], expected_version=ANY, meta=meta
            )
    return user


async def start_session(
    deps: Deps, *, user: UserRow, correlation_id: UUID | None
) -> tuple[str, str]:
    """(session id, session secret); only the secret's digest is stored."""
    session_id, secret = str(new_id()), security.new_secret()
    started = SessionStarted(
        session_id=session_id,
        user_id=user.id,
        secret_hash=security.digest(secret),
        expires_at=datetime.now(UTC) + SESSION_LIFETIME,
    )
    meta = metadata(Actor(kind=ActorKind.USER, id=user.id), correlation_id)
    async with deps.store.transaction() as conn:
        await _append(
            deps, conn, session_stream(session_id), [started], expected_version=NO_STREAM, meta=meta
        )
    return session_id, secret


async def end_session(
    deps: Deps,
    *,
    session_id: str,
    user_id: str,
    reason: SessionEndReason,
    actor: Actor,
    correlation_id: UUID | None,
) -> None:
    ended = SessionEnded(session_id=session_id, user_id=user_id, reason=reason)
    try:
        async with deps.store.transaction() as conn:
            await _append(
                deps,
                conn,
                session_stream(session_id),
                [ended],
                expected_version=1,  # started, not yet ended
                meta=metadata(actor, correlation_id),
            )
    except ConcurrencyError:
        return  # already ended


async def create_token(
    deps: Deps,
    *,
    owner_id: str,
    name: str,
    scopes: list[Scope],
    actor: Actor,
    correlation_id: UUID | None,
) -> tuple[str, str]:
    """(token id, token); the token is returned this once and stored as its digest."""
    token_id = str(new_id())
    token = security.format_token(token_id, security.new_secret())
    created = TokenCreated(
        token_id=token_id,
        user_id=owner_id,
        name=name,
        scopes=scopes,
        token_hash=security.digest(token),
    )
    async with deps.store.transaction() as conn:
        await _append(
            deps,
            conn,
            token_stream(token_id),
            [created],
            expected_version=NO_STREAM,
            meta=metadata(actor, correlation_id),
        )
    return token_id, token


async def revoke_token(
    deps: Deps, *, owner_id: str, token_id: str, actor: Actor, correlation_id: UUID | None
) -> None:
    row = await queries.token_by_id(deps.pool, token_id)
    if row is None or row.user_id != owner_id:
        raise not_found("token")
    if row.revoked:
        return
    revoked = TokenRevoked(token_id=token_id, user_id=owner_id)
    try:
        async with deps.store.transaction() as conn:
            await _append(
                deps,
                conn,
                token_stream(token_id),
                [revoked],
                expected_version=1,  # created, not yet revoked
                meta=metadata(actor, correlation_id),
            )
    except ConcurrencyError:
        return  # revoked concurrently


async def change_role(
    deps: Deps,
    *,
    actor_id: str,
    user_id: str,
    role: RoleName,
    actor: Actor,
    correlation_id: UUID | None,
) -> UserRow:
    """Decide on the user's stream and the admins stream, append with the versions read; a
    concurrent change of either makes this attempt fail and decide again on fresh state."""
    meta = metadata(actor, correlation_id)
    for attempt in range(1, ROLE_CHANGE_ATTEMPTS + 1):
        try:
            async with deps.store.transaction() as conn:
                user_events = await deps.store.read_stream(user_stream(user_id), conn=conn)
                user = fold_user(REGISTRY.load(e) for e in user_events)
                if user is None:
                    raise not_found("user")
                admin_events = await deps.store.read_stream(ADMINS_STREAM, conn=conn)
                admins = fold_admins(REGISTRY.load(e) for e in admin_events)
                change = decide_role_change(actor_id=actor_id, user=user, role=role, admins=admins)
                if change.admin_events:
                    await deps.store.append(
                        ADMINS_STREAM,
                        change.admin_events,
                        expected_version=admin_events[-1].version if admin_events else NO_STREAM,
                        metadata=meta,
                        conn=conn,
                    )
                if change.user_events:
                    await _append(
                        deps,
                        conn,
                        user_stream(user_id),
                        change.user_events,
                        expected_version=user_events[-1].version,
                        meta=meta,
                    )
                return UserRow(id=user.user_id, email=user.email, name=user.name, role=role)
        except ConcurrencyError:
            if attempt == ROLE_CHANGE_ATTEMPTS:
                raise conflict("CONCURRENT_UPDATE", "roles changed meanwhile; try again") from None
    raise AssertionError("unreachable")
