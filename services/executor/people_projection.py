"""`executor-people`: who holds which role and who is deactivated, from the people service's
user.* events, into `executor.people` (read by services/executor/people.py). Replayable."""

from __future__ import annotations

from libs.events.catalog.people import (
    UserDeactivated,
    UserReactivated,
    UserRegistered,
    UserRoleChanged,
)
from libs.events.consumers import Consumer, Handler, HandlerContext


async def on_user_role(ctx: HandlerContext, event: UserRegistered | UserRoleChanged) -> None:
    await ctx.conn.execute(
        "INSERT INTO executor.people (user_id, role) VALUES ($1, $2) "
        "ON CONFLICT (user_id) DO UPDATE SET role = excluded.role",
        event.user_id,
        event.role,
    )


async def on_user_active(ctx: HandlerContext, event: UserDeactivated | UserReactivated) -> None:
    await ctx.conn.execute(
        "UPDATE executor.people SET active = $2 WHERE user_id = $1",
        event.user_id,
        isinstance(event, UserReactivated),
    )


_HANDLERS: dict[str, Handler] = {
    UserRegistered.event_type: on_user_role,
    UserRoleChanged.event_type: on_user_role,
    UserDeactivated.event_type: on_user_active,
    UserReactivated.event_type: on_user_active,
}
PEOPLE_PROJECTION = Consumer(
    name="executor-people", handlers=_HANDLERS, tables=("executor.people",)
)
