"""People commands: load, decide, append. The people projection is applied in the same
transaction (read-your-writes inside this service); every command answers with the streams it
wrote, so the gateway can bring its own read model up to them before it answers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from libs.contracts.people import (
    Receipt,
    Registered,
    RoleChanged,
    SessionOpened,
    TokenCreatedOut,
    TokenIssued,
    Written,
    digest,
    email_hash,
    format_token,
    normalise_email,
)
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
from libs.events.consumers import append_and_project
from libs.events.db import Conn
from libs.events.envelope import Actor, ActorKind, Envelope, Metadata, new_id
from libs.events.errors import ServiceError, conflict, not_found
from libs.events.registry import REGISTRY, DomainEvent
from libs.events.runtime import Deps
from libs.events.store import ANY, NO_STREAM, ConcurrencyError
from services.people import queries, security
from services.people.domain import (
    ADMINS_STREAM,
    decide_role_change,
    email_stream,
    fold_admins,
    fold_user,
    registration,
    session_stream,
    token_stream,
    user_stream,
)
from services.people.projection import PEOPLE_PROJECTION
from services.people.queries import UserRow

SESSION_LIFETIME = timedelta(days=7)
"""Absolute expiry of a session, however active."""
ROLE_CHANGE_ATTEMPTS = 5


def invalid_credentials() -> ServiceError:
    return ServiceError(401, "INVALID_CREDENTIALS", "the email or the password is wrong")


def _written(envelopes: Sequence[Envelope]) -> list[Written]:
    """The last version written per stream, in the order first written."""
    last: dict[str, int] = {}
    for envelope in envelopes:
        last[envelope.stream_id] = max(envelope.version, last.get(envelope.stream_id, 0))
    return [Written(stream_id=s, version=v) for s, v in last.items()]


@dataclass
class PeopleCommands:
    """The write side of the people service, bound to a running service's dependencies."""

    deps: Deps

    def __post_init__(self) -> None:
        self.projections = [self.deps.dispatcher(PEOPLE_PROJECTION, service="people")]

    async def _append(
        self,
        conn: Conn,
        stream_id: str,
        events: Sequence[DomainEvent],
        *,
        expected_version: int,
        meta: Metadata,
    ) -> list[Envelope]:
        return await append_and_project(
            self.deps.store,
            conn,
            self.projections,
            stream_id,
            events,
            expected_version=expected_version,
            metadata=meta,
        )

    async def _as_is(self, stream_id: str) -> Receipt:
        """The receipt of a command that found nothing to write: the stream as it stands."""
        version = await self.deps.store.stream_version(stream_id)
        return Receipt(written=[Written(stream_id=stream_id, version=version)])

    async def register(self, *, email: str, name: str, password: str, meta: Metadata) -> Registered:
        """A new user. The email's claim stream makes it unique; the admins stream's first event
        makes its writer the first admin. Both are decided by the store, never by counting."""
        email = normalise_email(email)
        password_hash = await security.hash_password(password)
        user_id = str(new_id())
        meta = meta.model_copy(update={"actor": Actor(kind=ActorKind.USER, id=user_id)})
        async with self.deps.store.transaction() as conn:
            try:
                claim = UserEmailClaimed(email_hash=email_hash(email), user_id=user_id)
                written = await self.deps.store.append(
                    email_stream(email),
                    [claim],
                    expected_version=NO_STREAM,
                    metadata=meta,
                    conn=conn,
                )
            except ConcurrencyError:
                raise conflict("EMAIL_TAKEN", "an account with this email already exists") from None
            bootstrapped = await self._claim_first_admin(conn, user_id, meta)
            events = registration(
                user_id=user_id,
                email=email,
                name=name,
                password_hash=password_hash,
                first_admin=bool(bootstrapped),
            )
            written += bootstrapped
            written += await self._append(
                conn, user_stream(user_id), events, expected_version=NO_STREAM, meta=meta
            )
        role: RoleName = "admin" if bootstrapped else "requester"
        user = UserRow(id=user_id, email=email, name=name, role=role)
        return Registered(user=user.out(), written=_written(written))

    async def _claim_first_admin(self, conn: Conn, user_id: str, meta: Metadata) -> list[Envelope]:
        """The admins stream's first event when this registration wins it, else nothing."""
        if await self.deps.store.stream_version(ADMINS_STREAM, conn=conn) > 0:
            return []  # the common case, answered without contending for the stream
        try:
            return await self.deps.store.append(
                ADMINS_STREAM,
                [AdminBootstrapped(user_id=user_id)],
                expected_version=NO_STREAM,
                metadata=meta,
                conn=conn,
            )
        except ConcurrencyError:
            return []  # another registration won the race

    async def login(self, *, email: str, password: str, meta: Metadata) -> SessionOpened:
        """Check the password, then start a session; 401 INVALID_CREDENTIALS otherwise, in
        about the same time for an unknown email as for a wrong password."""
        found = await queries.credentials(self.deps.pool, normalise_email(email))
        ok = await security.verify_password(found[1] if found else None, password)
        if not ok or found is None:
            raise invalid_credentials()
        user, stored = found
        own = meta.model_copy(update={"actor": Actor(kind=ActorKind.USER, id=user.id)})
        written: list[Envelope] = []
        fresh = await security.hash_password(password) if security.needs_rehash(stored) else None
        async with self.deps.store.transaction() as conn:
            if fresh is not None:  # hashing parameters were raised since: upgrade it
                written += await self._append(
                    conn,
                    user_stream(user.id),
                    [UserPasswordSet(user_id=user.id, password_hash=fresh)],
                    expected_version=ANY,
                    meta=own,
                )
            session_id, secret = str(new_id()), security.new_secret()
            started = SessionStarted(
                session_id=session_id,
                user_id=user.id,
                secret_hash=digest(secret),
                expires_at=datetime.now(UTC) + SESSION_LIFETIME,
            )
            written += await self._append(
                conn, session_stream(session_id), [started], expected_version=NO_STREAM, meta=own
            )
            # the user's stream too, so a reader of the receipt has who the session is for
            user_version = await self.deps.store.stream_version(user_stream(user.id), conn=conn)
        receipt = [Written(stream_id=user_stream(user.id), version=user_version)]
        return SessionOpened(
            user=user.out(),
            session_id=session_id,
            session_secret=secret,
            expires_at=started.expires_at,
            written=receipt + [w for w in _written(written) if w.stream_id != receipt[0].stream_id],
        )

    async def end_session(
        self, *, session_id: str, user_id: str, reason: SessionEndReason, meta: Metadata
    ) -> Receipt:
        """End one of `user_id`'s sessions (404 for another's); ending it twice is a no-op."""
        if await queries.session_owner(self.deps.pool, session_id) != user_id:
            raise not_found("session")
        ended = SessionEnded(session_id=session_id, user_id=user_id, reason=reason)
        try:
            async with self.deps.store.transaction() as conn:
                written = await self._append(
                    conn,
                    session_stream(session_id),
                    [ended],
                    expected_version=1,  # started, not yet ended
                    meta=meta,
                )
        except ConcurrencyError:
            return await self._as_is(session_stream(session_id))  # already ended
        return Receipt(written=_written(written))

    async def create_token(
        self, *, owner_id: str, name: str, scopes: list[Scope], meta: Metadata
    ) -> TokenIssued:
        """A new API token; the token is in this answer only and stored as its digest."""
        token_id = str(new_id())
        token = format_token(token_id, security.new_secret())
        created = TokenCreated(
            token_id=token_id, user_id=owner_id, name=name, scopes=scopes, token_hash=digest(token)
        )
        async with self.deps.store.transaction() as conn:
            written = await self._append(
                conn, token_stream(token_id), [created], expected_version=NO_STREAM, meta=meta
            )
        issued = TokenCreatedOut(id=token_id, token=token, name=name, scopes=scopes)
        return TokenIssued(token=issued, written=_written(written))

    async def revoke_token(self, *, owner_id: str, token_id: str, meta: Metadata) -> Receipt:
        """Revoke one of `owner_id`'s tokens (404 for another's); revoking twice is a no-op."""
        row = await queries.token_by_id(self.deps.pool, token_id)
        if row is None or row.user_id != owner_id:
            raise not_found("token")
        if row.revoked:
            return await self._as_is(token_stream(token_id))
        revoked = TokenRevoked(token_id=token_id, user_id=owner_id)
        try:
            async with self.deps.store.transaction() as conn:
                written = await self._append(
                    conn,
                    token_stream(token_id),
                    [revoked],
                    expected_version=1,  # created, not yet revoked
                    meta=meta,
                )
        except ConcurrencyError:
            return await self._as_is(token_stream(token_id))  # revoked concurrently
        return Receipt(written=_written(written))

    async def change_role(
        self, *, actor_id: str, user_id: str, role: RoleName, meta: Metadata
    ) -> RoleChanged:
        """Decide on the user's stream and the admins stream, append with the versions read; a
        concurrent change of either makes this attempt fail and decide again on fresh state."""
        for attempt in range(1, ROLE_CHANGE_ATTEMPTS + 1):
            try:
                return await self._change_role_once(
                    actor_id=actor_id, user_id=user_id, role=role, meta=meta
                )
            except ConcurrencyError:
                if attempt == ROLE_CHANGE_ATTEMPTS:
                    raise conflict(
                        "CONCURRENT_UPDATE", "roles changed meanwhile; try again"
                    ) from None
        raise AssertionError("unreachable")

    async def _change_role_once(
        self, *, actor_id: str, user_id: str, role: RoleName, meta: Metadata
    ) -> RoleChanged:
        store = self.deps.store
        async with store.transaction() as conn:
            user_events = await store.read_stream(user_stream(user_id), conn=conn)
            user = fold_user(REGISTRY.load(e) for e in user_events)
            if user is None:
                raise not_found("user")
            admin_events = await store.read_stream(ADMINS_STREAM, conn=conn)
            admins = fold_admins(REGISTRY.load(e) for e in admin_events)
            change = decide_role_change(actor_id=actor_id, user=user, role=role, admins=admins)
            written: list[Envelope] = []
            if change.admin_events:
                written += await store.append(
                    ADMINS_STREAM,
                    change.admin_events,
                    expected_version=admin_events[-1].version if admin_events else NO_STREAM,
                    metadata=meta,
                    conn=conn,
                )
            if change.user_events:
                written += await self._append(
                    conn,
                    user_stream(user_id),
                    change.user_events,
                    expected_version=user_events[-1].version,
                    meta=meta,
                )
        out = UserRow(id=user.user_id, email=user.email, name=user.name, role=role).out()
        receipt = _written(written) or [
            Written(stream_id=user_stream(user_id), version=user_events[-1].version)
        ]
        return RoleChanged(user=out, written=receipt)
