"""The delivery log of one endpoint (`GET /webhooks/{id}/deliveries`): newest first, by state,
keyset-paged by seq."""

from __future__ import annotations

from typing import Any, Final

import asyncpg

from libs.contracts.deliveries import DeliveryOut, DeliveryState
from services.executor.queries import Db

_COLUMNS: Final = (
    "seq, delivery_id, webhook_id, generation, event_id, stream_id, version, position, type, "
    "state, attempts, next_at, last_status, last_error, created_at, updated_at, delivered_at"
)


def _out(row: asyncpg.Record) -> DeliveryOut:
    values: dict[str, Any] = dict(row)
    return DeliveryOut(
        id=values["delivery_id"],
        webhook_id=values["webhook_id"],
        event_id=values["event_id"],
        type=values["type"],
        stream_id=values["stream_id"],
        version=values["version"],
        position=values["position"],
        state=values["state"],
        attempts=values["attempts"],
        replay=values["generation"] > 0,
        next_attempt_at=values["next_at"] if values["state"] == "pending" else None,
        last_status=values["last_status"],
        last_error=values["last_error"],
        created_at=values["created_at"],
        updated_at=values["updated_at"],
        delivered_at=values["delivered_at"],
    )


async def list_deliveries(
    db: Db,
    webhook_id: str,
    *,
    state: DeliveryState | None,
    limit: int,
    before: int | None = None,
) -> list[tuple[int, DeliveryOut]]:
    """(seq, delivery), newest first; `before` is the seq of the previous page's last."""
    rows = await db.fetch(
        f"SELECT {_COLUMNS} FROM executor.deliveries WHERE webhook_id = $1 "
        "AND ($2::text IS NULL OR state = $2) AND ($3::bigint IS NULL OR seq < $3) "
        "ORDER BY seq DESC LIMIT $4",
        webhook_id,
        state,
        before,
        limit,
    )
    return [(r["seq"], _out(r)) for r in rows]
