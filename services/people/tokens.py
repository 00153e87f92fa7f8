"""API tokens: creating one (for an active account, with an optional expiry, within the
per-user cap) and revoking one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from libs.contracts.people import (
    TOKEN_LIFETIME_MAX_S,
    Receipt,
    TokenCreatedOut,
    TokenIn,
    TokenIssued,
    digest,
    format_token,
)
from libs.events.catalog.people import TokenCreated, TokenRevoked
from libs.events.db import Conn
from libs.events.envelope import Metadata, new_id
from libs.events.errors import ServiceError, not_found
from libs.events.registry import REGISTRY
from libs.events.store import NO_STREAM
from services.people import queries, security
from services.people.domain import UserState, decide_token, fold_user, token_stream, user_stream
from services.people.writer import Writer, written

NO_EXPIRY_RETRY_S = 3600
"""Retry-After when the cap is reached and none of the user's tokens expire on their own."""


def expiry(body: TokenIn, now: datetime) -> datetime | None:
    """When the token stops working; 422 for a time in the past or too far ahead."""
    if body.expires_in is not None:
        return now + timedelta(seconds=body.expires_in)
    if body.expires_at is None:
        return None
    if body.expires_at <= now:
        raise _invalid("must be in the future")
    if body.expires_at > now + timedelta(seconds=TOKEN_LIFETIME_MAX_S):
        raise _invalid("must be within five years")
    return body.expires_at.astimezone(UTC)


def _invalid(why: str) -> ServiceError:
    return ServiceError(
        422, "VALIDATION_ERROR", "the request body is not valid", {"expires_at": why}
    )


class TokenCommands(Writer):
    async def create_token(self, *, owner_id: str, body: TokenIn, meta: Metadata) -> TokenIssued:
        """A new API token; the token is in this answer only and stored as its digest."""
        expires_at = expiry(body, datetime.now(UTC))
        token_id = str(new_id())
        token = format_token(token_id, security.new_secret())
        created = TokenCreated(
            token_id=token_id,
            user_id=owner_id,
            name=body.name,
            scopes=body.scopes,
            token_hash=digest(token),
            expires_at=expires_at,
        )
        async with self.deps.store.transaction() as conn:
            events = decide_token(owner=await self._owner(conn, owner_id), created=created)
            await self._within_cap(conn, owner_id)
            appended = await self._append(
                conn, token_stream(token_id), events, expected_version=NO_STREAM, meta=meta
            )
        issued = TokenCreatedOut(
            id=token_id, token=token, name=body.name, scopes=body.scopes, expires_at=expires_at
        )
        return TokenIssued(token=issued, written=written(appended))

    async def _owner(self, conn: Conn, owner_id: str) -> UserState | None:
        """The owner's account as it stands. Its row is share-locked first: a deactivation
        (which updates that row in its transaction) then waits for this creation to commit and
        ends the new token with the others, or commits first and is read here."""
        await conn.execute("SELECT 1 FROM people.users WHERE user_id = $1 FOR SHARE", owner_id)
        events = await self.deps.store.read_stream(user_stream(owner_id), conn=conn)
        return fold_user(REGISTRY.load(e) for e in events)

    async def _within_cap(self, conn: Conn, owner_id: str) -> None:
        """429 TOO_MANY_TOKENS when the owner holds the most live tokens allowed. Creations for
        one owner take turns (a transaction lock), so concurrent ones cannot pass the cap."""
        await conn.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended('people-tokens:' || $1, 0))", owner_id
        )
        cap = self.deps.settings.live_tokens_per_user
        live = await queries.live_token_count(conn, owner_id)
        if live.count < cap:
            return
        retry_after = live.next_expiry_s if live.next_expiry_s is not None else NO_EXPIRY_RETRY_S
        raise ServiceError(
            429,
            "TOO_MANY_TOKENS",
            f"you hold {live.count} live API tokens, the most allowed ({cap}); revoke one first",
            {"limit": cap, "retry_after": max(1, retry_after)},
        )

    async def revoke_token(self, *, owner_id: str, token_id: str, meta: Metadata) -> Receipt:
        """Revoke one of `owner_id`'s tokens (404 for another's); revoking twice is a no-op."""
        row = await queries.token_by_id(self.deps.pool, token_id)
        if row is None or row.user_id != owner_id:
            raise not_found("token")
        if row.revoked:
            return await self._as_is(token_stream(token_id))
        revoked = TokenRevoked(token_id=token_id, user_id=owner_id)
        return await self._end(token_stream(token_id), revoked, meta=meta)
