"""The notification RPC methods (libs/contracts/notifications.py): a signed-in user's own list,
and marking one of theirs read. Services have no notifications of their own to read."""

from __future__ import annotations

from dataclasses import dataclass

from libs.contracts import notifications as contract
from libs.events.bus import RpcRequest, reply_budget
from libs.events.contract import fit_page
from libs.events.envelope import ActorKind
from libs.events.runtime import Deps
from services.executor import queries as paging
from services.executor.notifications import queries
from services.executor.notifications.writes import Writer
from services.executor.refusals import Refusal


def user_of(req: RpcRequest) -> str | None:
    """The person asking (an API token asks for its owner); None for a service or the system."""
    if req.role is None or req.actor.kind in (ActorKind.SERVICE, ActorKind.SYSTEM):
        return None
    return req.on_behalf_of or req.actor.id


def is_user(req: RpcRequest) -> bool:
    return user_of(req) is not None


def _user(req: RpcRequest) -> str:
    user = user_of(req)
    if user is None:  # the guard refuses this first
        raise Refusal("FORBIDDEN", "notifications are a signed-in user's own")
    return user


@dataclass
class NotificationsApi:
    """notifications.list and notifications.read, bound to a running service's dependencies."""

    deps: Deps

    def __post_init__(self) -> None:
        self.writer = Writer(self.deps.store, self.deps.settings)

    async def page(
        self, req: RpcRequest, body: contract.NotificationsListIn
    ) -> contract.NotificationPage:
        """The caller's notifications, newest first (`unread`: only those not read yet)."""
        before = paging.decode_cursor(body.cursor) if body.cursor else None
        rows = await queries.list_for(
            self.deps.pool, _user(req), unread=body.unread, limit=body.limit + 1, before=before
        )
        items = fit_page(
            [item for _, item in rows[: body.limit]], budget=reply_budget(self.deps.nc)
        )
        more = len(items) < len(rows)
        cursor = paging.encode_cursor(rows[len(items) - 1][0]) if more and items else None
        return contract.NotificationPage(items=items, next_cursor=cursor)

    async def read(
        self, req: RpcRequest, body: contract.NotificationIdIn
    ) -> contract.NotificationOut:
        """Mark one of the caller's notifications read (404 for anyone else's)."""
        user = _user(req)
        async with self.deps.store.transaction() as conn:
            return await self.writer.mark_read(
                conn, user_id=user, nid=body.id, metadata=req.metadata("executor")
            )
