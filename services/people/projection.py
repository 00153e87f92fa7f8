"""The people read model: PEOPLE_PROJECTION applies user.* events to people.users (with the
password hash and whether they are active), people.sessions and people.tokens. Replayable;
timestamps come from the envelope so a rebuild equals the live tables. A deactivation ends the
user's sessions and tokens here (no event per session: `user.deactivated` says it of them all)."""

from __future__ import annotations

from libs.events.catalog.people import (
    SessionEnded,
    SessionStarted,
    TokenCreated,
    TokenRevoked,
    UserDeactivated,
    UserPasswordSet,
    UserReactivated,
    UserRegistered,
    UserRoleChanged,
)
from libs.events.consumers import Consumer, HandlerContext


async def on_user_registered(ctx: HandlerContext, event: UserRegistered) -> None:
    await ctx.conn.execute(
        "INSERT INTO people.users (user_id, email, name, role, registered_at) "
        "VALUES ($1, $2, $3, $4, $5)",
        event.user_id,
        event.email,
        event.name,
        event.role,
        ctx.envelope.recorded_at,
    )


async def on_user_password_set(ctx: HandlerContext, event: UserPasswordSet) -> None:
    await ctx.conn.execute(
        "UPDATE people.users SET password_hash = $2 WHERE user_id = $1",
        event.user_id,
        event.password_hash,
    )


async def on_user_role_changed(ctx: HandlerContext, event: UserRoleChanged) -> None:
    await ctx.conn.execute(
        "UPDATE people.users SET role = $2 WHERE user_id = $1", event.user_id, event.role
    )


async def on_user_deactivated(ctx: HandlerContext, event: UserDeactivated) -> None:
    at = ctx.envelope.recorded_at
    await ctx.conn.execute(
        "UPDATE people.users SET active = false WHERE user_id = $1", event.user_id
    )
    await ctx.conn.execute(
        "UPDATE people.sessions SET ended_at = $2, end_reason = 'deactivated' "
        "WHERE user_id = $1 AND ended_at IS NULL",
        event.user_id,
        at,
    )
    await ctx.conn.execute(
        "UPDATE people.tokens SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL",
        event.user_id,
        at,
    )


async def on_user_reactivated(ctx: HandlerContext, event: UserReactivated) -> None:
    await ctx.conn.execute(
        "UPDATE people.users SET active = true WHERE user_id = $1", event.user_id
    )


async def on_session_started(ctx: HandlerContext, event: SessionStarted) -> None:
    await ctx.conn.execute(
        "INSERT INTO people.sessions (session_id, user_id, started_at, expires_at) "
        "VALUES ($1, $2, $3, $4)",
        event.session_id,
        event.user_id,
        ctx.envelope.recorded_at,
        event.expires_at,
    )
    await _end_if_deactivated(ctx, event)


async def _end_if_deactivated(ctx: HandlerContext, event: SessionStarted) -> None:
    """A login that raced a deactivation (checked before it, appended after) starts ended, so
    a later reactivation does not bring it to life."""
    await ctx.conn.execute(
        "UPDATE people.sessions SET ended_at = started_at, end_reason = 'deactivated' "
        "WHERE session_id = $1 AND EXISTS "
        "(SELECT 1 FROM people.users WHERE user_id = $2 AND NOT active)",
        event.session_id,
        event.user_id,
    )


async def on_session_ended(ctx: HandlerContext, event: SessionEnded) -> None:
    await ctx.conn.execute(
        "UPDATE people.sessions SET ended_at = $2, end_reason = $3 WHERE session_id = $1",
        event.session_id,
        ctx.envelope.recorded_at,
        event.reason,
    )


async def on_token_created(ctx: HandlerContext, event: TokenCreated) -> None:
    await ctx.conn.execute(
        "INSERT INTO people.tokens (token_id, user_id, name, scopes, created_at, expires_at) "
        "VALUES ($1, $2, $3, $4, $5, $6)",
        event.token_id,
        event.user_id,
        event.name,
        list(event.scopes),
        ctx.envelope.recorded_at,
        event.expires_at,
    )
    await _revoke_if_deactivated(ctx, event)


async def _revoke_if_deactivated(ctx: HandlerContext, event: TokenCreated) -> None:
    """A token created for a user already deactivated (one that raced the deactivation) starts
    revoked, as such a session starts ended: a later reactivation does not bring it to life."""
    await ctx.conn.execute(
        "UPDATE people.tokens SET revoked_at = created_at WHERE token_id = $1 AND EXISTS "
        "(SELECT 1 FROM people.users WHERE user_id = $2 AND NOT active)",
        event.token_id,
        event.user_id,
    )


async def on_token_revoked(ctx: HandlerContext, event: TokenRevoked) -> None:
    await ctx.conn.execute(
        "UPDATE people.tokens SET revoked_at = $2 WHERE token_id = $1",
        event.token_id,
        ctx.envelope.recorded_at,
    )


PEOPLE_PROJECTION = Consumer(
    name="people",
    handlers={
        "user.registered": on_user_registered,
        "user.password_set": on_user_password_set,
        "user.role_changed": on_user_role_changed,
        "user.deactivated": on_user_deactivated,
        "user.reactivated": on_user_reactivated,
        "user.session_started": on_session_started,
        "user.session_ended": on_session_ended,
        "user.token_created": on_token_created,
        "user.token_revoked": on_token_revoked,
    },
    tables=("people.users", "people.sessions", "people.tokens"),
)
