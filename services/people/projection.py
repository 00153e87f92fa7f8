"""The people read model: PEOPLE_PROJECTION applies user.* events to people.users (with the
password hash and whether they are active), people.sessions and people.tokens. Replayable;
timestamps come from the envelope so a rebuild equals the live tables. A deactivation ends the
user's sessions and tokens here (no event per session: `user.deactivated` says it of them all)."""

from __future__ import annotations

from libs.contracts.people_access import (
    access_handlers,
    end_session_if_inactive,
    revoke_token_if_inactive,
)
from libs.events.catalog.people import (
    SessionStarted,
    TokenCreated,
    UserPasswordSet,
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


async def on_session_started(ctx: HandlerContext, event: SessionStarted) -> None:
    await ctx.conn.execute(
        "INSERT INTO people.sessions (session_id, user_id, started_at, expires_at) "
        "VALUES ($1, $2, $3, $4)",
        event.session_id,
        event.user_id,
        ctx.envelope.recorded_at,
        event.expires_at,
    )
    await end_session_if_inactive(ctx, "people", event.session_id, event.user_id)


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
    await revoke_token_if_inactive(ctx, "people", event.token_id, event.user_id)


PEOPLE_PROJECTION = Consumer(
    name="people",
    handlers={
        **access_handlers("people"),
        "user.registered": on_user_registered,
        "user.password_set": on_user_password_set,
        "user.role_changed": on_user_role_changed,
        "user.session_started": on_session_started,
        "user.token_created": on_token_created,
    },
    tables=("people.users", "people.sessions", "people.tokens"),
)
