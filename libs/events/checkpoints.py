"""Per-stream consumer checkpoints: the last version a consumer has passed in each stream, and the
versions above it that were parked.

The rule they keep: the checkpoint only ever passes an event that was handled or parked itself.
A parked event whose predecessors are not yet handled is remembered in `parked` (above `version`)
instead of moving the checkpoint over them; once the predecessors are handled, the checkpoint
rolls forward over it. The rows are locked FOR UPDATE in the consumer's transaction, always in
stream-id order, so replicas handling overlapping batches never deadlock.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from uuid import UUID

from libs.events.db import Conn


@dataclass
class Checkpoint:
    """A consumer's position in one stream, as locked in the current transaction."""

    version: int
    parked: set[int] = field(default_factory=set)
    changed: bool = False

    def is_done(self, version: int) -> bool:
        """Passed already (handled or parked): a delivery of it is a repeat."""
        return version <= self.version

    def is_parked(self, version: int) -> bool:
        return version in self.parked

    def advance(self, version: int) -> None:
        """Pass everything up to `version` (the caller handled or skipped each of them)."""
        if version > self.version:
            self.version = version
            self.changed = True
        self._roll_forward()

    def mark_parked(self, version: int) -> None:
        if version <= self.version or version in self.parked:
            return
        self.parked.add(version)
        self.changed = True
        self._roll_forward()

    def _roll_forward(self) -> None:
        while self.version + 1 in self.parked:
            self.version += 1
            self.changed = True
        stale = {v for v in self.parked if v <= self.version}
        if stale:
            self.parked -= stale
            self.changed = True


async def lock_checkpoints(
    conn: Conn, consumer: str, stream_ids: Iterable[str]
) -> dict[str, Checkpoint]:
    """Create or lock the consumer's rows for `stream_ids` in one statement, in stream-id order.

    The no-op update takes the row lock, so a racing replica waits here until we commit."""
    locked = await lock_checkpoints_gated(conn, consumer, stream_ids, gate=None)
    if locked is None:
        raise RuntimeError("unreachable: without a gate every row is locked")
    return locked


async def lock_checkpoints_gated(
    conn: Conn, consumer: str, stream_ids: Iterable[str], *, gate: int | None
) -> dict[str, Checkpoint] | None:
    """`lock_checkpoints`, but the same statement first tries the advisory lock
    (gate, hashtext(consumer)) shared for the transaction, and locks nothing and returns None
    when it is held exclusively (a replay of this consumer is running): one round trip."""
    ordered = sorted(set(stream_ids))
    rows = await conn.fetch(
        "WITH gate AS (SELECT $3::int IS NULL "
        "  OR pg_try_advisory_xact_lock_shared($3::int, hashtext($1)) AS open) "
        "INSERT INTO eventstore.consumer_streams AS c (consumer, stream_id, version) "
        "SELECT $1, s.id, 0 FROM gate, unnest($2::text[]) WITH ORDINALITY AS s(id, n) "
        "WHERE gate.open ORDER BY s.n "
        "ON CONFLICT (consumer, stream_id) DO UPDATE SET version = c.version "
        "RETURNING c.stream_id, c.version, c.parked",
        consumer,
        ordered,
        gate,
    )
    if ordered and not rows:
        return None
    return {r["stream_id"]: Checkpoint(r["version"], set(r["parked"])) for r in rows}


EventKey = tuple[UUID, str, int]
"""An event as a delivered message names it: (id, stream, version)."""


async def lock_checkpoints_known(
    conn: Conn, consumer: str, events: Sequence[EventKey], *, gate: int
) -> tuple[dict[str, Checkpoint] | None, set[EventKey]]:
    """`lock_checkpoints_gated` for the streams of `events`, and, in the same statement (one
    round trip), which of `events` the store holds as named: a message whose id is not in the
    store, or is there with another stream or version, is not one of ours."""
    ordered = sorted({stream for _, stream, _ in events})
    rows = await conn.fetch(
        "WITH gate AS (SELECT pg_try_advisory_xact_lock_shared($3::int, hashtext($1)) AS open), "
        "locked AS ("
        "  INSERT INTO eventstore.consumer_streams AS c (consumer, stream_id, version) "
        "  SELECT $1, s.id, 0 FROM gate, unnest($2::text[]) WITH ORDINALITY AS s(id, n) "
        "  WHERE gate.open ORDER BY s.n "
        "  ON CONFLICT (consumer, stream_id) DO UPDATE SET version = c.version "
        "  RETURNING c.stream_id, c.version, c.parked), "
        "known AS (SELECT array_agg(e.id) AS ids, array_agg(e.stream_id) AS streams, "
        "  array_agg(e.version) AS versions FROM eventstore.events e "
        "  WHERE e.id = ANY($4::uuid[])) "
        "SELECT locked.*, known.ids, known.streams, known.versions FROM locked, known",
        consumer,
        ordered,
        gate,
        [event_id for event_id, _, _ in events],
    )
    if not rows:
        return None, set()
    first = rows[0]
    known = set(
        zip(first["ids"] or [], first["streams"] or [], first["versions"] or [], strict=True)
    )
    return {r["stream_id"]: Checkpoint(r["version"], set(r["parked"])) for r in rows}, known


async def save_checkpoints(
    conn: Conn, consumer: str, checkpoints: Mapping[str, Checkpoint]
) -> None:
    """Write the changed checkpoints back (one statement); they are locked by this transaction."""
    changed = {s: c for s, c in checkpoints.items() if c.changed}
    if not changed:
        return
    streams = sorted(changed)
    await conn.execute(
        "UPDATE eventstore.consumer_streams AS c SET version = u.version, "
        "parked = u.parked::int[] "
        "FROM unnest($2::text[], $3::int[], $4::text[]) AS u(stream_id, version, parked) "
        "WHERE c.consumer = $1 AND c.stream_id = u.stream_id",
        consumer,
        streams,
        [changed[s].version for s in streams],
        ["{" + ",".join(map(str, sorted(changed[s].parked))) + "}" for s in streams],
    )
    for checkpoint in changed.values():
        checkpoint.changed = False
