"""A service's own copy of who holds which role and who is deactivated, from the people
service's `user.*` events: one consumer shape for every service that decides by role (the
approvals service: who may vote; the executor: whom `role:` reaches). Each service names its
own consumer and its own table `(user_id text PRIMARY KEY, role text, active boolean)`."""

from __future__ import annotations

from libs.events.catalog.people import (
    UserDeactivated,
    UserReactivated,
    UserRegistered,
    UserRoleChanged,
)
from libs.events.consumers import Consumer, Handler, HandlerContext


def people_roles(name: str, table: str) -> Consumer:
    """The replayable consumer `name` keeping `table` (schema-qualified, the service's own)."""
    upsert = (
        f"INSERT INTO {table} (user_id, role) VALUES ($1, $2) "
        "ON CONFLICT (user_id) DO UPDATE SET role = excluded.role"
    )
    activate = f"UPDATE {table} SET active = $2 WHERE user_id = $1"

    async def on_role(ctx: HandlerContext, event: UserRegistered | UserRoleChanged) -> None:
        await ctx.conn.execute(upsert, event.user_id, event.role)

    async def on_active(ctx: HandlerContext, event: UserDeactivated | UserReactivated) -> None:
        await ctx.conn.execute(activate, event.user_id, isinstance(event, UserReactivated))

    handlers: dict[str, Handler] = {
        UserRegistered.event_type: on_role,
        UserRoleChanged.event_type: on_role,
        UserDeactivated.event_type: on_active,
        UserReactivated.event_type: on_active,
    }
    return Consumer(name=name, handlers=handlers, tables=(table,))
