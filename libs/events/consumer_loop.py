"""One consumer's loop on JetStream: fetch a batch, apply it, ack it; retry, park, catch up.

Each consumer is a durable JetStream pull consumer, so every replica of a service pulls from the
same one and each event is processed once between them; the next batch streams in while one
is handled (libs/events/prefetch.py keeps the loop's own pull request open). A batch commits as one
transaction; if anything in it fails, it is processed one message at a time, so a failure is
pinned on the event that failed (a gap event included) and counted in the store. Below the last
attempt the message is nak'ed with exponential backoff and jitter; at the last one the failing
event is parked. A failure of the connection or the server, not of the handler, is retried
without counting. A consumer whose position on the bus is gone (messages expired before it read
them) catches up from the store, which is the truth. The loop runs under the process's
supervisor: anything it does not handle restarts it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError
from prometheus_client import Counter
from pydantic import ValidationError

from libs.events.consumers import Dispatcher, HandlerFailed, ReplayInProgress, describe
from libs.events.db import is_connection_error, is_database_connection_error
from libs.events.envelope import Envelope
from libs.events.parking import park, record_attempt, record_finish, record_start
from libs.events.prefetch import ConsumerGone, NextBatch
from libs.events.replay import resume_interrupted_replay
from libs.events.store import START, load_envelope
from libs.events.supervisor import TaskStatus

if TYPE_CHECKING:
    from libs.events.runtime import Deps

log = logging.getLogger(__name__)

HANDLED = Counter("opsledger_events_handled_total", "Events processed", ["consumer", "outcome"])
FETCH_BATCH = 64
FETCH_TIMEOUT_S = 1.0
ACK_WAIT_S = 15.0
"""How long the bus waits for an ack before redelivering (a crashed replica's batch comes back
this soon); a long batch keeps its messages with in-progress beats every third of it."""
REPLAY_WAIT_S = 1.0
"""How long a message waits (nak delay) while a replay of its consumer runs."""
CATCH_UP_BATCH = 500
REPLAY_CHECK_S = 5.0
"""How often a live loop looks for an interrupted replay of its consumer to run again, and
checks that its consumer is still on the bus."""
BATCH_BUDGET_S = 0.1
"""A batch commits and goes on in a new transaction once its handlers have taken this long."""


@dataclass
class ConsumerLoop:
    deps: Deps
    dispatcher: Dispatcher

    @property
    def name(self) -> str:
        return self.dispatcher.consumer.name

    async def run(self, status: TaskStatus) -> None:
        await self._subscribe()
        upcoming = NextBatch(
            self.deps.nc,
            stream=self.deps.settings.stream_name,
            consumer=self.name,
            batch=FETCH_BATCH,
            timeout=FETCH_TIMEOUT_S,
        )
        next_replay_check = 0.0
        try:
            status.up()
            # a prefetched batch's ack_wait runs from its delivery, whatever the loop is doing
            async with self._keep_alive(upcoming.waiting):
                while not status.stopping.is_set():
                    if time.monotonic() >= next_replay_check:
                        await self._resume_interrupted_replay()
                        await self._raise_if_consumer_gone()
                        next_replay_check = time.monotonic() + REPLAY_CHECK_S
                    messages = await upcoming.take()  # the next ones come in while handled
                    if messages:
                        await self.handle_batch(messages)
        finally:
            await upcoming.close()

    async def _raise_if_consumer_gone(self) -> None:
        """A consumer deleted while no request of ours was open is told to nobody (nats-server
        2.9 then answers requests with silence): look, so the loop sets it up again."""
        try:
            await self.deps.js.consumer_info(self.deps.settings.stream_name, self.name)
        except NotFoundError as exc:
            raise ConsumerGone(f"consumer {self.name} is not on the bus: {exc}") from exc
        except Exception as exc:  # the bus is away for a moment: the pull itself copes with it
            log.debug("%s: could not look at its consumer: %r", self.name, exc)

    async def _resume_interrupted_replay(self) -> None:
        if self.dispatcher.consumer.replayable:
            await resume_interrupted_replay(self.dispatcher, self.deps)

    async def _subscribe(self) -> None:
        """Create or update the durable consumer, and catch up from the store if the bus lost
        messages it never acked."""
        settings, js = self.deps.settings, self.deps.js
        config = ConsumerConfig(
            durable_name=self.name,
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL,
            ack_wait=ACK_WAIT_S,
            max_deliver=-1,  # we count attempts and park ourselves, where an operator sees it
            max_ack_pending=1000,
            filter_subject=self.dispatcher.consumer.subject_filter(settings),
        )
        try:
            await js.consumer_info(settings.stream_name, self.name)
            new = False
        except NotFoundError:
            new = True
        await js.add_consumer(settings.stream_name, config)
        if await self._bus_lost_events(new=new):
            await self.catch_up_from_store()

    async def _bus_lost_events(self, *, new: bool) -> bool:
        """True when messages this consumer never acked are gone from the bus (expired by its
        retention, or purged), so its next message would silently skip them: a new consumer on
        a stream that no longer starts at 1, or one whose ack floor is below the stream's first
        message. (Messages of other subjects expiring past a filtered consumer's floor can make
        this say yes needlessly; the catch-up is then only slower, never wrong.)"""
        js, stream = self.deps.js, self.deps.settings.stream_name
        first = (await js.stream_info(stream)).state.first_seq or 0
        if new:
            return first > 1
        info = await js.consumer_info(stream, self.name)
        floor = info.ack_floor.stream_seq if info.ack_floor and info.ack_floor.stream_seq else 0
        return first > floor + 1

    async def catch_up_from_store(self) -> int:
        """Run every event of this consumer's types from the store through the dispatcher (the
        checkpoints make the ones already handled no-ops); returns how many were new."""
        log.warning("%s: its position on the bus is gone; catching up from the store", self.name)
        applied, cursor = 0, START
        while True:
            batch = await self.deps.store.read_batch(
                cursor, types=self.dispatcher.consumer.types, limit=CATCH_UP_BATCH
            )
            for envelope in batch.events:
                applied += await self._apply_from_store(envelope)
            cursor = batch.cursor
            if len(batch.events) < CATCH_UP_BATCH:
                log.info("%s: caught up from the store (%d events were new)", self.name, applied)
                return applied

    async def _apply_from_store(self, envelope: Envelope) -> int:
        """Apply one event read from the store, retrying in place; parks it at the last attempt."""
        max_attempts = self.deps.settings.handler_max_attempts
        while True:
            try:
                async with self.deps.store.transaction() as conn:
                    return int(await self.dispatcher.apply(conn, envelope))
            except ReplayInProgress:
                await asyncio.sleep(REPLAY_WAIT_S)
            except HandlerFailed as exc:
                if is_database_connection_error(exc.cause):
                    raise
                attempts, _ = await self._count_failure(exc)
                if attempts < max_attempts:
                    await asyncio.sleep(backoff_delay(attempts))

    async def handle_batch(self, messages: Sequence[Msg]) -> None:
        """Process a fetched batch in order in as few transactions as its handlers' time allows
        (one commit, one WAL flush, instead of one per event; a new transaction after every
        BATCH_BUDGET_S, so slow handlers never make a long one), acking each part as it commits.
        If anything fails, the rest is processed one message at a time. A batch holding a
        redelivered message is processed one at a time from the start, counting runs begun
        and finished, so an event whose handler kills its process is parked in the end."""
        pairs = [(msg, env) for msg in messages if (env := await self._decode(msg)) is not None]
        async with self._keep_alive(lambda: messages):
            if any(_redelivered(msg) for msg, _ in pairs):
                for msg, envelope in pairs:
                    await self._handle(msg, envelope, watch=_redelivered(msg))
                return
            rest = pairs
            while len(rest) > 1:
                done = await self._apply_together(rest)
                if done is None:
                    break
                rest = rest[done:]
            for msg, envelope in rest:
                await self._handle(msg, envelope)

    async def _decode(self, msg: Msg) -> Envelope | None:
        try:
            return load_envelope(msg.data)
        except (ValidationError, ValueError):
            log.error("%s: dropping a non-envelope message on %s", self.name, msg.subject)
            with contextlib.suppress(Exception):
                await msg.term()
            return None

    async def _apply_together(self, pairs: list[tuple[Msg, Envelope]]) -> int | None:
        """Apply a prefix of `pairs` in one transaction and ack it; how many were done, or None
        when it failed (nothing of it kept)."""
        try:
            async with self.deps.store.transaction() as conn:
                outcomes = await self.dispatcher.apply_batch(
                    conn, [env for _, env in pairs], budget_s=BATCH_BUDGET_S
                )
        except ReplayInProgress:
            for msg, _ in pairs:
                await self._nak(msg, REPLAY_WAIT_S)
            return len(pairs)
        except HandlerFailed as exc:
            log.debug("%s: a batch of %d failed (%r); one by one", self.name, len(pairs), exc)
            if not is_database_connection_error(exc.cause):
                # that run of the handler counts; store trouble here shows again one by one
                with contextlib.suppress(Exception):
                    await self._count_failure(exc)
            return None
        except Exception as exc:
            log.debug("%s: a batch of %d failed (%r); one by one", self.name, len(pairs), exc)
            return None
        for (msg, _), processed in zip(pairs, outcomes, strict=False):
            await self._ack(msg, processed)
        return len(outcomes)

    async def _handle(self, msg: Msg, envelope: Envelope, *, watch: bool = False) -> None:
        if watch and not await self._may_run_again(msg, envelope):
            return
        try:
            await self._apply_one(msg, envelope)
        finally:  # every way out but the process dying: stepping aside, failing, being stopped
            await self._finished(envelope, watch)

    async def _apply_one(self, msg: Msg, envelope: Envelope) -> None:
        try:
            async with self.deps.store.transaction() as conn:
                processed = await self.dispatcher.apply(conn, envelope)
        except ReplayInProgress:
            HANDLED.labels(self.name, "deferred").inc()
            await self._nak(msg, REPLAY_WAIT_S)
            return
        except HandlerFailed as exc:
            if is_database_connection_error(exc.cause):
                await self._transient(msg, exc.cause)
            else:
                await self._failed(msg, exc)
            return
        except Exception as exc:
            if is_connection_error(exc):  # the store or the connection, not a handler
                await self._transient(msg, exc)
            else:  # the runtime failed around the handler: count it, or it retries forever
                await self._failed(msg, HandlerFailed(envelope, exc, note="around its handler"))
            return
        await self._ack(msg, processed)

    async def _may_run_again(self, msg: Msg, envelope: Envelope) -> bool:
        """Before running a redelivered event: note the run, and park the event instead when
        as many earlier runs as it has attempts never finished (their process died). Such an
        event is then acked: it is parked, or was passed meanwhile, and must not come back."""
        try:
            async with self.deps.pool.acquire() as conn:
                died = await record_start(conn, consumer=self.name, envelope=envelope)
        except Exception as exc:
            await self._transient(msg, exc)
            return False
        if died < self.deps.settings.handler_max_attempts:
            return True
        cause = RuntimeError(f"the process handling it ended {died} times before it finished")
        failure = HandlerFailed(envelope, cause, note="it kills its process")
        try:
            _, parked = await self._count_failure(failure, last=True)
        except ReplayInProgress:
            await self._nak(msg, REPLAY_WAIT_S)
            return False
        except Exception as store_exc:
            await self._transient(msg, store_exc)
            return False
        if parked:
            log.error("%s parks %s: %s", self.name, envelope.id, _error_text(failure))
            HANDLED.labels(self.name, "parked").inc()
        await self._ack(msg, False)
        return False

    async def _finished(self, envelope: Envelope, watched: bool) -> None:
        if watched:
            with contextlib.suppress(Exception):  # at worst one run is later counted as a death
                async with self.deps.pool.acquire() as conn:
                    await record_finish(conn, consumer=self.name, envelope=envelope)

    async def _failed(self, msg: Msg, exc: HandlerFailed, *, last: bool = False) -> None:
        """Count the attempt against the event that failed; park it at the last attempt (or
        now, when `last`)."""
        try:
            attempts, parked = await self._count_failure(exc, last=last)
        except ReplayInProgress:
            await self._nak(msg, REPLAY_WAIT_S)
            return
        except Exception as store_exc:  # nothing was counted: try the message again later
            log.warning(
                "%s: could not record a failure of %s: %r", self.name, exc.envelope.id, store_exc
            )
            await self._transient(msg, store_exc)
            return
        failed, error = exc.envelope, _error_text(exc)
        if attempts < self.deps.settings.handler_max_attempts and not last:
            log.warning("%s failed on %s (attempt %d): %s", self.name, failed.id, attempts, error)
            HANDLED.labels(self.name, "retried").inc()
            await self._nak(msg, backoff_delay(attempts))
            return
        if parked:
            log.error("%s parks %s after %d attempts: %s", self.name, failed.id, attempts, error)
            HANDLED.labels(self.name, "parked").inc()
        else:
            log.info(
                "%s: %s failed its last attempt but was handled meanwhile", self.name, failed.id
            )
        # the delivered event again, at once: it now passes the parked one (or is a repeat)
        await self._nak(msg, 0.01)

    async def _count_failure(self, exc: HandlerFailed, *, last: bool = False) -> tuple[int, bool]:
        """Record one failed attempt of the event that failed, and park it if that was its last
        (one transaction); returns its attempts so far and whether it was parked now."""
        failed, error = exc.envelope, _error_text(exc)
        parked = False
        async with self.deps.store.transaction() as conn:
            attempts = await record_attempt(conn, consumer=self.name, envelope=failed, error=error)
            if last or attempts >= self.deps.settings.handler_max_attempts:
                await self.dispatcher.enter(conn)
                parked = await park(
                    conn, consumer=self.name, envelope=failed, error=error, attempts=attempts
                )
        return attempts, parked

    async def _transient(self, msg: Msg, exc: BaseException) -> None:
        delivered = msg.metadata.num_delivered or 1
        log.warning("%s: %r; retrying (not counted as an attempt)", self.name, exc)
        HANDLED.labels(self.name, "transient").inc()
        await self._nak(msg, backoff_delay(min(delivered, 5)))

    async def _ack(self, msg: Msg, processed: bool) -> None:
        try:
            await msg.ack()
        except Exception as exc:  # committed already: a redelivery is a harmless repeat
            log.warning("%s: ack failed after commit (%r); a redelivery is skipped", self.name, exc)
            HANDLED.labels(self.name, "ack_failed").inc()
        HANDLED.labels(self.name, "processed" if processed else "duplicate").inc()

    async def _nak(self, msg: Msg, delay: float) -> None:
        try:
            await msg.nak(delay=delay)
        except Exception as exc:  # the bus redelivers after ack_wait anyway
            log.warning("%s: nak failed (%r)", self.name, exc)

    @contextlib.asynccontextmanager
    async def _keep_alive(self, messages: Callable[[], Sequence[Msg]]) -> AsyncIterator[None]:
        """Tell the bus the `messages()` of a long batch (or the next batch, fetched and not yet
        taken) are still held, so they are not redelivered to another replica after ack_wait
        while this one has them."""

        async def beat() -> None:
            while True:
                await asyncio.sleep(ACK_WAIT_S / 3)
                for msg in messages():
                    with contextlib.suppress(Exception):
                        await msg.in_progress()

        task = asyncio.create_task(beat())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def _error_text(exc: HandlerFailed) -> str:
    said = f"{exc.note}: " if exc.note else ""
    return said + describe(exc.cause)


def _redelivered(msg: Msg) -> bool:
    return (msg.metadata.num_delivered or 1) > 1


def backoff_delay(attempt: int, *, base: float = 0.2, cap: float = 30.0) -> float:
    """Exponential backoff with full jitter for the `attempt`-th failure (1-based)."""
    return random.uniform(base, min(cap, base * 2 ** (attempt - 1)) + base)
