"""`POST /webhooks/{id}/replay {after}`: re-send a subscription's events from a position.

In one short transaction that waits for any fan-out step on the subscription (its row lock):
the subscription's place moves back to just after the last event at or before position `after`
(0: the log's start; a position no event holds, a rolled-back append's, is a place all the same),
its generation is bumped, and its open deliveries (pending, or dead-lettered and holding their
lane) are superseded. The fan-out then matches every event after `after` again with the
endpoint's current patterns, each as a new delivery (a new delivery id: a replay is a new
delivery, not a retry), in commit order, so each stream's lane is in order again. A POST of a
superseded delivery still in flight may yet arrive: its outcome is not recorded."""

from __future__ import annotations

from libs.contracts.deliveries import ReplayOut
from libs.events.runtime import Deps
from libs.events.store import UnknownPosition
from services.executor import queries
from services.executor.refusals import Refusal
from services.executor.subscriptions.cursors import is_subscription


async def replay(deps: Deps, webhook_id: str, *, after: int) -> ReplayOut:
    row = await queries.webhook(deps.pool, webhook_id)
    if row is None or row.removed:
        raise Refusal("NOT_FOUND", "the webhook was not found")
    if not is_subscription(row):
        raise Refusal(
            "NOT_A_SUBSCRIPTION", "the webhook subscribes to no events: nothing to replay"
        )
    async with deps.pool.acquire() as conn, conn.transaction():
        # a position names a place in the log, a hole included (a rolled-back append leaves
        # one): the place is just after the last event at or before it
        at = await conn.fetchval(
            "SELECT max(position) FROM eventstore.events WHERE position <= $1", after
        )
        end = await conn.fetchval("SELECT coalesce(max(position), 0) FROM eventstore.events")
        if after > end:
            raise Refusal(
                "INVALID_POSITION",
                f"position {after} is beyond the end of the log ({end})",
                {"after": after},
            )
        try:
            start = await deps.store.cursor_at(int(at or 0), conn=conn)
        except UnknownPosition:  # the log cannot lose an event: only a bug gets here
            raise Refusal(
                "INVALID_POSITION", f"there is no event at position {at}", {"after": after}
            ) from None
        generation = await conn.fetchval(
            "UPDATE executor.subscriptions SET tx_id = $2::text::xid8, position = $3, "
            "generation = generation + 1, updated_at = now() WHERE webhook_id = $1 AND active "
            "RETURNING generation",
            webhook_id,
            str(start.tx_id),
            start.position,
        )
        if generation is None:  # it stopped subscribing meanwhile
            raise Refusal("NOT_A_SUBSCRIPTION", "the webhook subscribes to no events")
        status = await conn.execute(
            "UPDATE executor.deliveries SET state = 'superseded', updated_at = now() "
            "WHERE webhook_id = $1 AND state IN ('pending', 'dead_lettered')",
            webhook_id,
        )
    # the same after-commit hint as an append's: every replica's fan-out looks now
    await deps.nc.publish(deps.settings.relay_wake_subject, b"")
    return ReplayOut(
        id=webhook_id,
        after=after,
        superseded=int(status.rsplit(" ", 1)[-1]),
        generation=int(generation),
    )
