"""The gateway's read model for authenticating requests: AUTH_PROJECTION applies the people
service's user.* events to gateway.users (who, and their current role), gateway.sessions and
gateway.tokens (only digests of their secrets, and when a token expires). No password hash
ever reaches it. A deactivation ends the user's sessions and tokens here, so they stop working
at once and stay ended after a reactivation. Replayable; timestamps come from the envelope so a
rebuild equals the live tables.

It is fed by the bus, and also brought up to each people command the gateway sends before the
gateway answers (services/gateway/people/calls.py), so the next request sees that write."""

from __future__ import annotations

from libs.contracts.people_access import (
    access_handlers,
    end_session_if_inactive,
    revoke_token_if_inactive,
)
from libs.events.catalog.people import (
    SessionStarted,
    TokenCreated,
    UserRegistered,
    UserRoleChanged,
)
from libs.events.consumers import Consumer, HandlerContext


async def on_user_registered(ctx: HandlerContext, event: UserRegistered) -> None:
    await ctx.conn.execute(
        "INSERT INTO gateway.users (user_id, email, name, role, registered_at) "
        "VALUES ($1, $2, $3, $4, $5)",
        event.user_id,
        event.email,
        event.name,
        event.role,
        ctx.envelope.recorded_at,
    )


async def on_user_role_changed(ctx: HandlerContext, event: UserRoleChanged) -> None:
    await ctx.conn.execute(
        "UPDATE gateway.users SET role = $2 WHERE user_id = $1", event.user_id, event.role
    )


async def on_session_started(ctx: HandlerContext, event: SessionStarted) -> None:
    await ctx.conn.execute(
        "INSERT INTO gateway.sessions (session_id, user_id, secret_hash, started_at, expires_at) "
        "VALUES ($1, $2, $3, $4, $5)",
        event.session_id,
        event.user_id,
        event.secret_hash,
        ctx.envelope.recorded_at,
        event.expires_at,
    )
    await end_session_if_inactive(ctx, "gateway", event.session_id, event.user_id)


async def on_token_created(ctx: HandlerContext, event: TokenCreated) -> None:
    await ctx.conn.execute(
        "INSERT INTO gateway.tokens (token_id, user_id, name, scopes, token_hash, created_at, "
        "expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        event.token_id,
        event.user_id,
        event.name,
        list(event.scopes),
        event.token_hash,
        ctx.envelope.recorded_at,
        event.expires_at,
    )
    await revoke_token_if_inactive(ctx, "gateway", event.token_id, event.user_id)


AUTH_PROJECTION = Consumer(
    name="gateway-people",  # the name it had when the gateway owned people: its checkpoints
    handlers={
        **access_handlers("gateway"),
        "user.registered": on_user_registered,
        "user.role_changed": on_user_role_changed,
        "user.session_started": on_session_started,
        "user.token_created": on_token_created,
    },
    tables=("gateway.users", "gateway.sessions", "gateway.tokens"),
)
