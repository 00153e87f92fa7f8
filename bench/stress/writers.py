"""The writers: paced appends (plain, committed or rolled back) and what they know of them."""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Literal
from uuid import UUID

from bench.stress.helpers import describe, sleep_until
from bench.stress.plan import Plan
from bench.stress.service import StressAppended
from libs.events.envelope import Actor, Metadata, new_id
from libs.events.store import ANY, ConcurrencyError, EventStore

META = Metadata(actor=Actor.system(), service="stress")

MAX_TX_SLEEP_S = 0.05
WRITE_ATTEMPT_TIMEOUT_S = 15.0
RETRY_GRACE_S = 30.0
"""How long after the writers' deadline an unacknowledged append is still retried."""

Mode = Literal["plain", "commit", "rollback"]
MODES: tuple[Mode, ...] = ("plain", "commit", "rollback")
MODE_WEIGHTS = (0.5, 0.35, 0.15)


class NotCommitted(Exception):
    """The append failed before COMMIT was sent: it certainly did not commit."""


@dataclass(frozen=True)
class Append:
    stream_id: str
    events: list[StressAppended]
    ids: list[UUID]


@dataclass
class WriteLog:
    """What the writers know: acknowledged, ambiguous (commit sent, answer lost) and surely
    uncommitted event ids, plus counts for the report."""

    confirmed: set[UUID] = field(default_factory=set)
    ambiguous: set[UUID] = field(default_factory=set)
    not_committed: set[UUID] = field(default_factory=set)
    appends: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)


def make_append(writer: int, seq: int, plan: Plan, rng: random.Random) -> Append:
    """1-3 events for a random stream; a poison event is written between two good ones, so the
    one after it reaches the consumer with a failing event in the gap behind it."""
    if rng.random() < 2 * plan.poison_rate:  # about poison_rate of all events
        flags = [False, True, False]
    else:
        flags = [False] * rng.randint(1, 3)
    events = [StressAppended(writer=writer, seq=seq + i, poison=f) for i, f in enumerate(flags)]
    return Append(f"s-{rng.randrange(plan.streams)}", events, [new_id() for _ in events])


async def append_plain(store: EventStore, item: Append) -> None:
    """One autocommit append: any failure but a version conflict is ambiguous."""
    try:
        await store.append(
            item.stream_id, item.events, expected_version=ANY, metadata=META, ids=item.ids
        )
    except ConcurrencyError as exc:
        raise NotCommitted from exc


async def append_in_transaction(
    store: EventStore, item: Append, pause: float, *, commit: bool
) -> None:
    """Append in an explicit transaction, sleep `pause`, then commit or roll back.

    Raises NotCommitted for a failure before COMMIT; a failure during COMMIT propagates as it is
    (ambiguous); one after it (releasing the connection) is ignored."""
    state = "open"
    try:
        async with store.pool.acquire() as conn:
            tx = conn.transaction()
            await tx.start()
            try:
                await store.append(
                    item.stream_id,
                    item.events,
                    expected_version=ANY,
                    metadata=META,
                    ids=item.ids,
                    conn=conn,
                )
                await asyncio.sleep(pause)
            except BaseException:
                with contextlib.suppress(Exception):
                    await tx.rollback()
                raise
            if not commit:
                await tx.rollback()
                return
            state = "committing"
            await tx.commit()
            state = "committed"
    except Exception as exc:
        if state == "open":
            raise NotCommitted from exc
        if state == "committing":
            raise
    await store.committed()


async def attempt(store: EventStore, item: Append, mode: Mode, rng: random.Random) -> None:
    async with asyncio.timeout(WRITE_ATTEMPT_TIMEOUT_S):
        if mode == "plain":
            await append_plain(store, item)
        else:
            pause = rng.uniform(0, MAX_TX_SLEEP_S)
            await append_in_transaction(store, item, pause, commit=mode == "commit")


async def write(
    store: EventStore, item: Append, mode: Mode, wlog: WriteLog, rng: random.Random, until: float
) -> None:
    """Append `item` until it is acknowledged (retrying with the same ids, which the store makes
    idempotent) or `until` passes; a rollback is tried once."""
    ambiguous = False
    while True:
        try:
            await attempt(store, item, mode, rng)
        except NotCommitted as exc:
            wlog.errors[describe(exc.__cause__ or exc)] += 1
        except Exception as exc:
            ambiguous = ambiguous or mode != "rollback"
            wlog.errors[describe(exc)] += 1
        else:
            if mode == "rollback":
                break
            wlog.confirmed.update(item.ids)
            wlog.appends[f"{mode}: acknowledged"] += 1
            return
        if mode == "rollback" or time.monotonic() >= until:
            break
        await asyncio.sleep(rng.uniform(0.05, 0.3))
    outcome = "ambiguous" if ambiguous else "not committed"
    wlog.appends[f"{mode}: {outcome}"] += 1
    (wlog.ambiguous if ambiguous else wlog.not_committed).update(item.ids)


async def writer(
    index: int, store: EventStore, plan: Plan, wlog: WriteLog, deadline: float, seed: int
) -> None:
    """Append paced batches of 1-3 events to random streams until `deadline`."""
    rng = random.Random(seed)
    per_event = plan.writers / plan.rate
    seq = 0
    next_at = time.monotonic()
    while time.monotonic() < deadline:
        item = make_append(index, seq, plan, rng)
        seq += len(item.events)
        mode = rng.choices(MODES, MODE_WEIGHTS)[0]
        await write(store, item, mode, wlog, rng, deadline + RETRY_GRACE_S)
        next_at = max(next_at + len(item.events) * per_event, time.monotonic() - 1.0)
        await sleep_until(next_at)
