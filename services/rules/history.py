"""What a rule version would have fired on over stored history: the dry run of a draft and the
diff of two versions. Reads only (the log and this service's ticket snapshots); writes nothing.

Each stored event of the rule's trigger since an instant is evaluated with the same `fires()`
as live firing, over the ticket right after that event (this service's snapshot, or folded from
the store when the snapshot is not projected yet), enabled or not: that is the point of a draft.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from libs.contracts.rules import MAX_DRY_RUN_EVENTS, DryRunMatch
from libs.events.catalog.tickets import TICKET_EVENTS
from libs.events.envelope import Envelope, stream_category
from libs.events.registry import REGISTRY
from libs.events.runtime import Deps
from libs.rules.firing import RuleVersion, fires
from libs.rules.ticket_view import fold
from libs.rules.triggers import TRIGGERS, ticket_of
from services.rules import queries

_TICKET_TYPES = [cls.event_type for cls in TICKET_EVENTS]


@dataclass(frozen=True)
class Evaluation:
    """The events evaluated, and for each the rule versions (by index) that fired."""

    evaluated: int
    truncated: bool
    fired: list[tuple[Envelope, str | None, list[bool]]]


async def evaluate(
    deps: Deps, versions: Sequence[RuleVersion], *, since: datetime, limit: int = MAX_DRY_RUN_EVENTS
) -> Evaluation:
    """Every version of `versions` over the same events: those of their triggers since `since`."""
    types = sorted({t for v in versions for t in TRIGGERS[v.body.trigger.event].event_types})
    found = await queries.events_since(deps.pool, types, since=since, limit=limit + 1)
    events, truncated = found[:limit], len(found) > limit
    depth = deps.settings.rules_max_causation_depth
    fired = []
    for envelope in events:
        ticket = await ticket_after(deps, envelope)
        outcome = [fires(v, envelope, ticket, max_depth=depth) for v in versions]
        if any(outcome):
            fired.append((envelope, ticket_of(envelope), outcome))
    return Evaluation(len(events), truncated, fired)


async def ticket_after(deps: Deps, envelope: Envelope) -> dict[str, Any] | None:
    """The ticket right after `envelope` (its own stream's event), or the one it names now."""
    if stream_category(envelope.stream_id) != "ticket":
        key = ticket_of(envelope)
        return await queries.ticket_now(deps.pool, key) if key else None
    key = envelope.stream_id.removeprefix("ticket-")
    known = await queries.ticket_at(deps.pool, key, envelope.version)
    if known is not None:
        return known
    history = await deps.store.read_stream(
        envelope.stream_id, to_version=envelope.version, types=_TICKET_TYPES
    )
    return fold((REGISTRY.load(e), e.version, e.recorded_at) for e in history)


def match(envelope: Envelope, ticket: str | None, version: RuleVersion) -> DryRunMatch:
    return DryRunMatch(
        event_id=envelope.id,
        type=envelope.type,
        recorded_at=envelope.recorded_at,
        ticket=ticket,
        actions=list(version.body.actions),
    )
