"""Which endpoints are event subscriptions, and where each has got to in the log: the rows of
`executor.subscriptions`, written by `follow` in the transaction that registers, changes or
removes the endpoint, moved on by the fan-out and moved back by a replay.

An endpoint is a subscription while it is a `webhook` endpoint, not removed, with at least one
pattern. When it becomes one it starts right after the event that made it one (in the log's
commit order): earlier events are not delivered unless a replay asks. A change of its patterns
or of `include_internal` keeps its place: the new ones apply to the events the fan-out has not
matched yet. When it stops being one, its open deliveries are cancelled; when it becomes one
again it starts afresh after that event, keeping its replay generation."""

from __future__ import annotations

from libs.events.db import Conn
from libs.events.store import CommitCursor, EventStore
from services.executor.queries import WebhookRow


def is_subscription(row: WebhookRow) -> bool:
    return row.kind == "webhook" and not row.removed and bool(row.events)


def cursor_of(tx_id: str, position: int) -> CommitCursor:
    """A row's place, as read with `tx_id::text`."""
    return CommitCursor(int(tx_id), position)


async def follow(conn: Conn, store: EventStore, row: WebhookRow, *, position: int) -> None:
    """Keep the endpoint's subscription row in step with `row`, which the event at `position`
    (appended in this transaction) has just left it as."""
    active = await conn.fetchval(
        "SELECT active FROM executor.subscriptions WHERE webhook_id = $1 FOR UPDATE",
        row.webhook_id,
    )
    if is_subscription(row):
        if active:
            return
        start = await store.cursor_at(position, conn=conn)
        await conn.execute(
            "INSERT INTO executor.subscriptions (webhook_id, tx_id, position) "
            "VALUES ($1, $2::text::xid8, $3) ON CONFLICT (webhook_id) DO UPDATE SET "
            "tx_id = excluded.tx_id, position = excluded.position, active = true, "
            "updated_at = now()",
            row.webhook_id,
            str(start.tx_id),
            start.position,
        )
    elif active:
        await conn.execute(
            "UPDATE executor.subscriptions SET active = false, updated_at = now() "
            "WHERE webhook_id = $1",
            row.webhook_id,
        )
        await conn.execute(
            "UPDATE executor.deliveries SET state = 'cancelled', updated_at = now() "
            "WHERE webhook_id = $1 AND state IN ('pending', 'dead_lettered')",
            row.webhook_id,
        )
