"""The rules service's write side: load a rule's stream, decide (`domain`), append at the
expected version and project inline, all in one transaction (read-your-writes: the answer is
read back from the projection in that transaction). A writer that lost a race decides again."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from dataclasses import dataclass

from libs.contracts.rules import RuleOut
from libs.events.consumers import append_and_project
from libs.events.db import Conn
from libs.events.envelope import Metadata
from libs.events.registry import DomainEvent
from libs.events.runtime import Deps
from libs.events.store import NO_STREAM, ConcurrencyError
from libs.rules.gate import hold_for_rule_write
from services.rules import domain, queries
from services.rules.domain import RuleState, rule_stream
from services.rules.projection import RULES
from services.rules.refusals import Refusal

ATTEMPTS = 8
Decide = Callable[[RuleState | None], list[DomainEvent]]


@dataclass
class RuleCommands:
    """Rule commands, bound to a running service's dependencies."""

    deps: Deps

    def __post_init__(self) -> None:
        self.projections = [self.deps.dispatcher(RULES, service="rules")]

    async def load(self, rule_id: str, *, conn: Conn | None = None) -> tuple[RuleState | None, int]:
        """The rule folded from its stream, and the stream's version."""
        history = await self.deps.store.read_stream(rule_stream(rule_id), conn=conn)
        registry = self.deps.store.registry
        state = domain.fold(registry.load(e) for e in history if registry.knows(e.type))
        return state, history[-1].version if history else NO_STREAM

    async def run(self, rule_id: str, decide: Decide, *, meta: Metadata) -> RuleOut:
        """Decide against the rule's stream as it is, append at its version, answer the rule
        as projected (archived included: a DELETE answers the rule it archived)."""
        stream = rule_stream(rule_id)
        for attempt in range(ATTEMPTS):
            try:
                async with self.deps.store.transaction() as conn:
                    await hold_for_rule_write(conn)  # no ticket append sees half a change
                    await conn.execute(
                        "SELECT pg_advisory_xact_lock(hashtextextended($1, 7312))", stream
                    )
                    state, version = await self.load(rule_id, conn=conn)
                    events = decide(state)
                    await append_and_project(
                        self.deps.store,
                        conn,
                        self.projections,
                        stream,
                        events,
                        expected_version=version,
                        metadata=meta,
                    )
                    return await self._read_back(conn, rule_id)
            except ConcurrencyError:
                await asyncio.sleep(random.uniform(0, 0.005 * 2**attempt))
        raise Refusal("CONCURRENT_CHANGE", "the rule changed too often; try again")

    async def _read_back(self, conn: Conn, rule_id: str) -> RuleOut:
        found = await queries.rule(conn, rule_id, archived=True)
        if found is None:  # projected inline in this very transaction: cannot happen
            raise RuntimeError(f"rule {rule_id} was written but not projected")
        return found

    async def current(self, rule_id: str) -> RuleOut | None:
        return await queries.rule(self.deps.pool, rule_id)
