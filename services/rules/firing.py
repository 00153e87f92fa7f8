"""Firing: an event that fires a trigger makes one job per rule version it fires.

The rule versions are those live just before the event in the log (`queries.live_versions`),
so a replay decides as the live consumer did, and as the approval gate did when it locked the
ticket in the event's own append (`libs/rules/gate.py`). Each firing's job is appended to
`job_stream(job_id(rule, version, event))` with "no stream yet": a second append of the same
firing (the event redelivered, replayed, or handled by another replica at the same moment)
finds the stream there and is a no-op, decided by the store's uniqueness, not by a lock of ours.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from libs.events.consumers import HandlerContext
from libs.events.store import NO_STREAM, ConcurrencyError
from libs.rules.firing import fires, job_id, job_stream
from libs.rules.triggers import triggers_of
from services.rules import queries
from services.rules.domain import decide_firing

log = logging.getLogger(__name__)


async def fire(ctx: HandlerContext, ticket: Mapping[str, Any] | None) -> list[str]:
    """Append the job of every live rule version that fires on the handler's event, given the
    ticket right after it; returns the ids of the jobs (made now or already there)."""
    envelope = ctx.envelope
    names = [trigger.name for trigger in triggers_of(envelope.type)]
    depth = ctx.settings.rules_max_causation_depth
    jobs: list[str] = []
    for rule in await queries.live_versions(
        ctx.conn, names, position=envelope.position, at=envelope.recorded_at
    ):
        if not fires(rule, envelope, ticket, max_depth=depth):
            continue
        job = job_id(rule.rule_id, rule.version, envelope.id)
        events = decide_firing(rule, envelope, ticket)
        try:
            await ctx.append(job_stream(job), events, expected_version=NO_STREAM)
        except ConcurrencyError:
            # this firing's job exists already: that is the dedup, and success
            log.debug("rules: job %s of %s exists already", job, envelope.id)
        jobs.append(job)
    return jobs
