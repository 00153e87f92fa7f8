"""The approvals service's write side: open a request, vote, expire, escalate; each decided
request releases its ticket's lock (`ticket.approval_decided`) in the transaction that decides it.

A decision is appended at the request stream's version, so of two votes that would each complete
the quorum one wins and the other, deciding again, is refused `ALREADY_DECIDED`. Releasing the
lock appends to the ticket's stream: like every ticket writer it holds the gate shared
(`libs/rules/gate.py`), so a gated rule on `approval.decided` locks the ticket in that same append.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from libs.contracts.rule_definitions import ApprovalIn
from libs.events import timers
from libs.events.catalog.approvals import (
    ApprovalDecided,
    ApprovalEscalationDue,
    ApprovalExpiryDue,
    ApprovalRequested,
    Via,
    Vote,
)
from libs.events.catalog.tickets import TicketApprovalDecided
from libs.events.consumers import Dispatcher, append_and_project
from libs.events.db import Conn
from libs.events.envelope import Actor, Envelope, Metadata
from libs.events.handler_api import HandlerContext
from libs.events.registry import DomainEvent
from libs.events.runtime import Deps
from libs.events.settings import Settings
from libs.events.store import NO_STREAM, ConcurrencyError, EventStore
from libs.rules.gate import GatedRules, ticket_before
from services.approvals import domain, queries
from services.approvals.domain import Approval, Firing, Voter
from services.approvals.projection import REQUESTS
from services.approvals.refusals import Refusal

ATTEMPTS: Final = 8
_TIMER_IDS: Final = uuid.UUID("5e0d2c7b-8a41-4f6e-9b3d-7c1a2e4f6d80")
_RELEASE_IDS: Final = uuid.UUID("a3c5e7f9-1b2d-4e6f-8a0c-2e4f6a8c0e1d")


def approval_stream(approval_id: str) -> str:
    return f"approval-{approval_id}"


def ticket_stream(key: str) -> str:
    return f"ticket-{key}"


@dataclass
class ApprovalCommands:
    """Approval commands over a store: from an RPC method, or inside a consumer's transaction."""

    store: EventStore
    settings: Settings

    def __post_init__(self) -> None:
        self.projections = [
            Dispatcher(
                consumer=REQUESTS, service="approvals", store=self.store, settings=self.settings
            )
        ]
        # this instance's copy of the gated rules: the API's lives as long as the replica; a
        # consumer's (one per event, for a timer's due) catches up from the log's start
        self.gate = GatedRules(registry=self.store.registry)

    @classmethod
    def of(cls, deps: Deps) -> ApprovalCommands:
        return cls(deps.store, deps.settings)

    @classmethod
    def for_handler(cls, ctx: HandlerContext) -> ApprovalCommands:
        return cls(ctx.store, ctx.settings)

    async def load(self, conn: Conn, approval_id: str) -> Approval | None:
        registry = self.store.registry
        history = await self.store.read_stream(approval_stream(approval_id), conn=conn)
        return domain.fold(
            (registry.load(e), e.version, e.recorded_at) for e in history if registry.knows(e.type)
        )

    async def open(self, conn: Conn, firing: Firing, *, meta: Metadata) -> None:
        """Open the request of a gated firing in the caller's transaction (once: a second
        opening, from the firing's other announcement or a replica, finds it there)."""
        state = await self.load(conn, firing.approval_id)
        if state is not None:
            return
        gate = ApprovalIn.model_validate(dict(firing.gate))
        approvers = await queries.approvers(
            conn,
            users=gate.approvers.users,
            roles=list(gate.approvers.roles),
            exclude=firing.requester_id,
        )
        events = domain.decide_open(state, firing, approvers=approvers)
        if not events:
            return
        stream = approval_stream(firing.approval_id)
        try:
            await self._append(conn, stream, events, NO_STREAM, meta)
        except ConcurrencyError:
            return  # opened meanwhile by another replica: that is the dedup
        [requested] = events
        if not isinstance(requested, ApprovalRequested):  # decide_open opens with it
            raise RuntimeError("an approval request opened without approval.requested")
        await self._timer(
            conn, requested, "expiry", requested.expires_at, ApprovalExpiryDue(), meta
        )
        if requested.escalate_at is not None:
            due = requested.escalate_at
            await self._timer(conn, requested, "escalation", due, ApprovalEscalationDue(), meta)

    async def _timer(
        self,
        conn: Conn,
        requested: ApprovalRequested,
        kind: str,
        due: datetime,
        event: DomainEvent,
        meta: Metadata,
    ) -> None:
        await timers.schedule(
            self.store,
            conn,
            due_at=due,
            target_stream=approval_stream(requested.approval_id),
            event=event,
            metadata=meta,
            timer_id=uuid.uuid5(_TIMER_IDS, f"{requested.approval_id}/{kind}"),
        )

    async def vote(
        self,
        approval_id: str,
        voter: Voter,
        *,
        vote: Vote,
        reason: str | None,
        via: Via,
        link_id: str | None,
        meta: Metadata,
    ) -> Approval:
        """One vote, decided against the request as it is; the loser of a race decides again."""
        for attempt in range(ATTEMPTS):
            try:
                async with self.store.transaction() as conn:
                    await self.gate.hold(conn)
                    state = await self.load(conn, approval_id)
                    events = domain.decide_vote(
                        state, voter, vote=vote, reason=reason, via=via, link_id=link_id
                    )
                    if state is None:  # decide_vote refuses a missing request
                        raise Refusal("NOT_FOUND", "the approval request was not found")
                    return await self._settle(conn, state, events, meta)
            except ConcurrencyError:
                await asyncio.sleep(random.uniform(0, 0.005 * 2**attempt))
        raise Refusal("CONCURRENT_CHANGE", "the request changed too often; try again")

    async def expire(self, conn: Conn, approval_id: str, *, meta: Metadata) -> None:
        """The expiry timer's due, in the consumer's transaction."""
        await self.gate.hold(conn)
        state = await self.load(conn, approval_id)
        events = domain.decide_expiry(state)
        if state is not None and events:
            await self._settle(conn, state, events, meta)

    async def escalate(self, conn: Conn, approval_id: str, *, meta: Metadata) -> None:
        """The escalation timer's due: tell the approvers again (until on-call schedules
        exist, the people of the approvers' roles and the named approvers)."""
        state = await self.load(conn, approval_id)
        if state is None:
            return
        asked = state.requested
        notified = await queries.approvers(
            conn, users=asked.users, roles=asked.roles, exclude=asked.requester_id
        )
        events = domain.decide_escalation(state, notified)
        if events:
            stream = approval_stream(approval_id)
            await self._append(conn, stream, events, state.version, meta)

    async def _settle(
        self, conn: Conn, state: Approval, events: Sequence[DomainEvent], meta: Metadata
    ) -> Approval:
        stream = approval_stream(state.id)
        written = await self._append(conn, stream, events, state.version, meta)
        after: Approval | None = state
        for envelope in written:
            loaded = self.store.registry.load(envelope)
            after = domain.evolve(after, loaded, version=envelope.version, at=envelope.recorded_at)
        decided = next((e for e in events if isinstance(e, ApprovalDecided)), None)
        if decided is not None and state.requested.ticket is not None:
            await self._release(
                conn,
                state.requested.ticket,
                state.id,
                state.requested.rule_id,
                decided,
                written[-1],
            )
        if after is None:
            raise RuntimeError(f"approval {state.id} vanished while deciding it")
        return after

    async def _release(
        self,
        conn: Conn,
        key: str,
        approval_id: str,
        rule_id: str,
        decided: ApprovalDecided,
        cause: Envelope,
    ) -> None:
        """Release the ticket's lock (when it holds one for this request), in this transaction."""
        store = self.store
        history = await store.read_stream(ticket_stream(key), conn=conn)
        ticket = ticket_before(history, store.registry)
        if ticket is None or approval_id not in ticket.get("pending_approvals", []):
            return  # no lock (a request opened from a job, or released already)
        release = TicketApprovalDecided(
            approval_id=approval_id,
            decision=decided.outcome,
            decided_by=decided.by,
            reason=decided.reason,
            rule_id=rule_id,
        )
        meta = cause.metadata.caused_by(cause, actor=Actor.service("approvals"))
        written = await store.append(
            ticket_stream(key),
            [release],
            expected_version=history[-1].version,
            metadata=meta,
            ids=[uuid.uuid5(_RELEASE_IDS, approval_id)],
            conn=conn,
        )
        locks = self.gate.locks(ticket, written, max_depth=self.settings.rules_max_causation_depth)
        version = written[-1].version
        for lock in locks:
            lock_meta = cause.metadata.caused_by(written[0], actor=Actor.service("approvals"))
            appended = await store.append(
                ticket_stream(key),
                [lock],
                expected_version=version,
                metadata=lock_meta,
                ids=[uuid.uuid5(_RELEASE_IDS, f"lock/{lock.approval_id}")],
                conn=conn,
            )
            version = appended[-1].version

    async def _append(
        self,
        conn: Conn,
        stream: str,
        events: Sequence[DomainEvent],
        expected: int,
        meta: Metadata,
    ) -> list[Envelope]:
        return await append_and_project(
            self.store,
            conn,
            self.projections,
            stream,
            events,
            expected_version=expected,
            metadata=meta,
        )
