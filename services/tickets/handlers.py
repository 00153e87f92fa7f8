"""Command handlers: load the stream, decide, append at the expected version and project.

All in one transaction; when another writer got there first, reload and decide again. Command
handlers are methods of one class bound to the running service's Deps (`TicketCommands`); what
they decide is the domain's module functions."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from libs.events.consumers import append_and_project
from libs.events.db import Conn
from libs.events.envelope import Actor, Envelope, Metadata
from libs.events.registry import DomainEvent
from libs.events.runtime import Deps
from libs.events.store import NO_STREAM, ConcurrencyError
from libs.rules.gate import GatedRules, ticket_before
from services.tickets import domain, queries
from services.tickets.commands import Command, CreateTicket
from services.tickets.fields import BUILTIN_TYPES, TicketTypeSchema
from services.tickets.projection import TICKETS_PROJECTION
from services.tickets.refusals import Refusal
from services.tickets.state import TicketState, evolve, fold

ATTEMPTS = 8
_SEED_IDS = uuid.UUID("6f1c1f4e-1f0e-4c55-9d43-5b0d2f9a7c11")
_COMMAND_IDS = uuid.UUID("3c8f0d6a-52b1-4f4e-8a7e-1d9b6e0c2f57")
_LOCK_IDS = uuid.UUID("9d2e6b1a-4c3f-4e8d-a1b7-5f0c3e9d2a64")


def command_event_ids(stream: str, idempotency_key: str, count: int) -> list[uuid.UUID]:
    """The ids of the events a command with this idempotency key appends to `stream`: a repeat
    of it finds them there and appends nothing."""
    return [uuid.uuid5(_COMMAND_IDS, f"{stream}/{idempotency_key}/{i}") for i in range(count)]


def ticket_stream(key: str) -> str:
    return f"ticket-{key}"


def type_stream(key: str) -> str:
    return f"tickettype-{key}"


async def lock_stream(conn: Conn, stream_id: str) -> None:
    """Serialise this service's writers of one stream (the expected version stays the guard
    against everyone else, e.g. the approvals service appending the lock)."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 7311))", stream_id)


async def _pause(attempt: int) -> None:
    await asyncio.sleep(random.uniform(0, 0.005 * 2**attempt))


@dataclass
class TicketCommands:
    """The write side of the tickets service, bound to a running service's dependencies."""

    deps: Deps

    def __post_init__(self) -> None:
        self.projections = [self.deps.dispatcher(TICKETS_PROJECTION, service="tickets")]
        self.gate = GatedRules(registry=self.deps.store.registry)

    async def load(
        self, key: str, *, until: datetime | None = None, conn: Conn | None = None
    ) -> tuple[TicketState | None, list[Envelope]]:
        """The ticket folded from its stream (up to `until`), and the stream's events."""
        registry = self.deps.store.registry
        history = await self.deps.store.read_stream(ticket_stream(key), until=until, conn=conn)
        known = [e for e in history if registry.knows(e.type)]
        return fold((registry.load(e), e.version, e.recorded_at) for e in known), history

    async def run(
        self, key: str, command: Command, *, meta: Metadata, idempotency_key: str | None = None
    ) -> tuple[TicketState, list[Envelope]]:
        """Decide `command` against the stream as it is and append at its version. With an
        `idempotency_key` whose events are already in the stream, append nothing (a refusal
        is not remembered: a repeat of a refused command is decided again)."""
        stream = ticket_stream(key)
        for attempt in range(ATTEMPTS):
            try:
                async with self.deps.store.transaction() as conn:
                    await self.gate.hold(conn)
                    await lock_stream(conn, stream)
                    state, history = await self.load(key, conn=conn)
                    if state is not None and idempotency_key is not None:
                        [first] = command_event_ids(stream, idempotency_key, 1)
                        if any(e.id == first for e in history):
                            return state, []
                    decision = domain.decide(state, command)
                    expected = history[-1].version if history else NO_STREAM
                    ids = None
                    if idempotency_key is not None and decision.refusal is None:
                        ids = command_event_ids(stream, idempotency_key, len(decision.events))
                    written = await self._append(
                        conn, stream, decision.events, expected, meta, ids=ids
                    )
                    written += await self._lock(conn, stream, history, written)
            except ConcurrencyError:
                await _pause(attempt)
                continue
            if state is None:  # decide() refuses a missing ticket: this cannot happen
                raise RuntimeError(f"decided {command!r} on ticket {key}, which does not exist")
            for envelope in written:
                state = _evolve(self.deps, state, envelope)
            if decision.refusal is not None:  # the refusal is recorded; now answer with it
                raise decision.refusal
            return state, written
        raise Refusal("CONCURRENT_CHANGE", "the ticket changed too often; try again")

    async def create(self, command: CreateTicket, *, meta: Metadata) -> TicketState:
        """Take the next ticket number from the sequence and open the ticket. Nothing is held
        from taking the number to the commit, so creations run side by side. Bad input is
        refused before a number is taken; a number already used (the sequence behind the log,
        after a restore) is skipped past."""
        domain.decide_create(command, number=1)  # refuses what it would refuse with any number
        for _ in range(ATTEMPTS):
            number = int(await self.deps.pool.fetchval("SELECT nextval('tickets.ticket_numbers')"))
            key = domain.ticket_key(number)
            events = domain.decide_create(command, number=number)
            try:
                async with self.deps.store.transaction() as conn:
                    await self.gate.hold(conn)
                    # a taken number ends this transaction: no savepoint to keep it usable
                    written = await self._append(
                        conn, ticket_stream(key), events, NO_STREAM, meta, savepoint=False
                    )
                    written += await self._lock(conn, ticket_stream(key), [], written)
            except ConcurrencyError:
                await self._skip_taken_numbers()
                continue
            registry = self.deps.store.registry
            state = fold((registry.load(e), e.version, e.recorded_at) for e in written)
            if state is None:  # decide_create() always opens with ticket.created
                raise RuntimeError(f"ticket {key} was written without its ticket.created")
            return state
        raise Refusal("CONCURRENT_CHANGE", "no free ticket number was found; try again")

    async def _skip_taken_numbers(self) -> None:
        """Move the sequence past the highest number the log has a ticket for."""
        await self.deps.pool.execute(
            "SELECT setval('tickets.ticket_numbers', greatest(last_value, coalesce(("
            "  SELECT max((data->>'number')::bigint) FROM eventstore.events "
            "  WHERE type = 'ticket.created'), 1))) FROM tickets.ticket_numbers"
        )

    async def define_type(
        self,
        *,
        key: str,
        name: str,
        schema: TicketTypeSchema,
        meta: Metadata,
        builtin: bool = False,
    ) -> queries.TypeRow:
        """Version 1 of a new type (409 TYPE_EXISTS when the key is taken)."""
        ids = [uuid.uuid5(_SEED_IDS, key)] if builtin else None
        async with self.deps.store.transaction() as conn:
            await lock_stream(conn, type_stream(key))
            current = await self.deps.store.stream_version(type_stream(key), conn=conn)
            event = domain.decide_define_type(
                exists=current > 0, key=key, name=name, schema=schema, builtin=builtin
            )
            await append_and_project(
                self.deps.store,
                conn,
                self.projections,
                type_stream(key),
                [event],
                expected_version=NO_STREAM,
                metadata=meta,
                ids=ids,
            )
            row = await queries.ticket_type(conn, key)
        return _projected(row, key)

    async def revise_type(
        self, *, key: str, name: str | None, schema: TicketTypeSchema, meta: Metadata
    ) -> queries.TypeRow:
        """A new schema version of an existing type."""
        async with self.deps.store.transaction() as conn:
            await lock_stream(conn, type_stream(key))
            current = await queries.ticket_type(conn, key)
            version = await self.deps.store.stream_version(type_stream(key), conn=conn)
            event = domain.decide_revise_type(
                current_name=current.name if current else None,
                version=version,
                key=key,
                name=name,
                schema=schema,
            )
            await self._append(conn, type_stream(key), [event], version, meta)
            row = await queries.ticket_type(conn, key)
        return _projected(row, key)

    async def seed_builtin_types(self) -> None:
        """Define the built-in types once; replicas racing write each definition once."""
        meta = Metadata(actor=Actor.service("tickets"), service="tickets")
        for key, (name, schema) in BUILTIN_TYPES.items():
            try:
                await self.define_type(key=key, name=name, schema=schema, meta=meta, builtin=True)
            except Refusal as exc:
                if exc.code != "TYPE_EXISTS":
                    raise

    async def _lock(
        self, conn: Conn, stream: str, history: list[Envelope], written: list[Envelope]
    ) -> list[Envelope]:
        """In the transaction that appended `written`: the approval lock of every gated rule
        that fires on one of them, appended right after them (`libs/rules/gate.py`)."""
        if not written or not self.gate.any_gated:
            return []
        locks = self.gate.locks(
            ticket_before(history, self.deps.store.registry),
            written,
            max_depth=self.deps.settings.rules_max_causation_depth,
            registry=self.deps.store.registry,
        )
        appended: list[Envelope] = []
        for lock in locks:
            trigger = next(e for e in written if str(e.id) == lock.details["trigger_event_id"])
            meta = trigger.metadata.caused_by(trigger, actor=Actor.service("tickets"))
            appended += await self._append(
                conn,
                stream,
                [lock],
                (appended or written)[-1].version,
                meta,
                ids=[uuid.uuid5(_LOCK_IDS, lock.approval_id)],
            )
        return appended

    async def _append(
        self,
        conn: Conn,
        stream: str,
        events: Sequence[DomainEvent],
        expected: int,
        meta: Metadata,
        *,
        savepoint: bool = True,
        ids: Sequence[uuid.UUID] | None = None,
    ) -> list[Envelope]:
        return await append_and_project(
            self.deps.store,
            conn,
            self.projections,
            stream,
            events,
            expected_version=expected,
            metadata=meta,
            ids=ids,
            savepoint=savepoint,
        )


def _projected(row: queries.TypeRow | None, key: str) -> queries.TypeRow:
    """The type just written, read back in the writing transaction (projected inline)."""
    if row is None:
        raise RuntimeError(f"ticket type {key} was written but not projected")
    return row


def _evolve(deps: Deps, state: TicketState, envelope: Envelope) -> TicketState:
    after = evolve(
        state, deps.store.registry.load(envelope), version=envelope.version, at=envelope.recorded_at
    )
    return after or state
