"""The rules every read model of people's access applies, whoever keeps it (the people service's
own tables and the gateway's authentication read model): a deactivation ends the user's sessions
and revokes their tokens, a session or token that started for an already inactive user (it raced
the deactivation) starts ended, so a reactivation brings none of them back. Each read model has
`users`, `sessions` and `tokens` tables with these columns in its own schema."""

from __future__ import annotations

from typing import Literal

from libs.events.catalog.people import (
    SessionEnded,
    TokenRevoked,
    UserDeactivated,
    UserReactivated,
)
from libs.events.consumers import Handler, HandlerContext

Schema = Literal["people", "gateway"]


async def end_session_if_inactive(
    ctx: HandlerContext, schema: Schema, session_id: str, user_id: str
) -> None:
    """Call right after inserting a started session."""
    await ctx.conn.execute(
        f"UPDATE {schema}.sessions SET ended_at = started_at, end_reason = 'deactivated' "
        f"WHERE session_id = $1 AND EXISTS "
        f"(SELECT 1 FROM {schema}.users WHERE user_id = $2 AND NOT active)",
        session_id,
        user_id,
    )


async def revoke_token_if_inactive(
    ctx: HandlerContext, schema: Schema, token_id: str, user_id: str
) -> None:
    """Call right after inserting a created token."""
    await ctx.conn.execute(
        f"UPDATE {schema}.tokens SET revoked_at = created_at WHERE token_id = $1 AND EXISTS "
        f"(SELECT 1 FROM {schema}.users WHERE user_id = $2 AND NOT active)",
        token_id,
        user_id,
    )


def access_handlers(schema: Schema) -> dict[str, Handler]:
    """The handlers of the events whose effect is the same in every read model of access."""

    async def on_user_deactivated(ctx: HandlerContext, event: UserDeactivated) -> None:
        at = ctx.envelope.recorded_at
        await ctx.conn.execute(
            f"UPDATE {schema}.users SET active = false WHERE user_id = $1", event.user_id
        )
        await ctx.conn.execute(
            f"UPDATE {schema}.sessions SET ended_at = $2, end_reason = 'deactivated' "
            "WHERE user_id = $1 AND ended_at IS NULL",
            event.user_id,
            at,
        )
        await ctx.conn.execute(
            f"UPDATE {schema}.tokens SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL",
            event.user_id,
            at,
        )

    async def on_user_reactivated(ctx: HandlerContext, event: UserReactivated) -> None:
        await ctx.conn.execute(
            f"UPDATE {schema}.users SET active = true WHERE user_id = $1", event.user_id
        )

    async def on_session_ended(ctx: HandlerContext, event: SessionEnded) -> None:
        await ctx.conn.execute(
            f"UPDATE {schema}.sessions SET ended_at = $2, end_reason = $3 WHERE session_id = $1",
            event.session_id,
            ctx.envelope.recorded_at,
            event.reason,
        )

    async def on_token_revoked(ctx: HandlerContext, event: TokenRevoked) -> None:
        await ctx.conn.execute(
            f"UPDATE {schema}.tokens SET revoked_at = $2 WHERE token_id = $1",
            event.token_id,
            ctx.envelope.recorded_at,
        )

    return {
        "user.deactivated": on_user_deactivated,
        "user.reactivated": on_user_reactivated,
        "user.session_ended": on_session_ended,
        "user.token_revoked": on_token_revoked,
    }
