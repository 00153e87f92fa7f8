"""Accounts: registering (with the password policy), signing in, and ending a session."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from libs.contracts.people import (
    Receipt,
    Registered,
    SessionOpened,
    Written,
    digest,
    email_hash,
    normalise_email,
)
from libs.events.catalog.people import (
    AdminBootstrapped,
    RoleName,
    SessionEnded,
    SessionEndReason,
    SessionStarted,
    UserEmailClaimed,
    UserPasswordSet,
)
from libs.events.db import Conn
from libs.events.envelope import Actor, ActorKind, Envelope, Metadata, new_id
from libs.events.errors import ServiceError, conflict, not_found
from libs.events.store import ANY, NO_STREAM, ConcurrencyError
from services.people import queries, security
from services.people.domain import (
    ADMINS_STREAM,
    account_disabled,
    email_stream,
    registration,
    session_stream,
    user_stream,
)
from services.people.passwords import check_strength
from services.people.queries import UserRow
from services.people.writer import Writer, written

SESSION_LIFETIME = timedelta(days=7)
"""Absolute expiry of a session, however active."""


def invalid_credentials() -> ServiceError:
    return ServiceError(401, "INVALID_CREDENTIALS", "the email or the password is wrong")


class AccountCommands(Writer):
    async def register(self, *, email: str, name: str, password: str, meta: Metadata) -> Registered:
        """A new user. The email's claim stream makes it unique; the admins stream's first event
        makes its writer the first admin. Both are decided by the store, never by counting."""
        email = normalise_email(email)
        await check_strength(password, email=email, name=name)
        password_hash = await security.hash_password(password)
        user_id = str(new_id())
        meta = meta.model_copy(update={"actor": Actor(kind=ActorKind.USER, id=user_id)})
        async with self.deps.store.transaction() as conn:
            try:
                claim = UserEmailClaimed(email_hash=email_hash(email), user_id=user_id)
                appended = await self.deps.store.append(
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
            appended += bootstrapped
            appended += await self._append(
                conn, user_stream(user_id), events, expected_version=NO_STREAM, meta=meta
            )
        role: RoleName = "admin" if bootstrapped else "requester"
        user = UserRow(id=user_id, email=email, name=name, role=role)
        return Registered(user=user.out(), written=written(appended))

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
        about the same time for an unknown email as for a wrong password. A deactivated user
        with the right password is told so (403): only the password's holder learns it."""
        found = await queries.credentials(self.deps.pool, normalise_email(email))
        checked = await security.check_password(found.password_hash if found else None, password)
        if not checked.ok or found is None:
            raise invalid_credentials()
        if not found.active:
            raise account_disabled()
        user = found.user
        own = meta.model_copy(update={"actor": Actor(kind=ActorKind.USER, id=user.id)})
        appended: list[Envelope] = []
        fresh = await security.hash_password(password) if checked.rehash else None
        async with self.deps.store.transaction() as conn:
            if fresh is not None:  # older parameters, or made before normalisation: upgrade it
                appended += await self._append(
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
            appended += await self._append(
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
            written=receipt + [w for w in written(appended) if w.stream_id != receipt[0].stream_id],
        )

    async def end_session(
        self, *, session_id: str, user_id: str, reason: SessionEndReason, meta: Metadata
    ) -> Receipt:
        """End one of `user_id`'s sessions (404 for another's); ending it twice is a no-op."""
        if await queries.session_owner(self.deps.pool, session_id) != user_id:
            raise not_found("session")
        ended = SessionEnded(session_id=session_id, user_id=user_id, reason=reason)
        return await self._end(session_stream(session_id), ended, meta=meta)
