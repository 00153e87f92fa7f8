"""Whether a rule version fires on an event, and the ids of what a firing makes: one pure
evaluator that the rules service fires jobs with and that the tickets service takes the
approval lock with, inside the append of the triggering event, so the two always agree."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final
from uuid import UUID

from libs.contracts.rule_definitions import RuleBody
from libs.events.conditions import evaluate
from libs.events.envelope import ActorKind, Envelope
from libs.rules.triggers import TRIGGERS, condition_context

DEFAULT_MAX_CAUSATION_DEPTH: Final = 3
AUTOMATION_ACTORS: Final = frozenset({"executor", "rules"})
"""Service actors that act for jobs: what they write was caused by automation. Other services
(SLA timers, ingest, the analyzer) report facts, and rules on those fire without opting in."""
JOB_ID_TAG: Final = b"opsledger.job.v1"


@dataclass(frozen=True)
class RuleVersion:
    """One version of a rule: what fired, as a job records it."""

    rule_id: str
    version: int
    body: RuleBody


def caused_by_automation(
    event: Envelope, *, automation_actors: frozenset[str] = AUTOMATION_ACTORS
) -> bool:
    """Whether a job caused the event: its actor is a service acting for jobs."""
    actor = event.metadata.actor
    return actor.kind is ActorKind.SERVICE and actor.id in automation_actors


def loop_guard_allows(
    body: RuleBody,
    event: Envelope,
    *,
    max_depth: int = DEFAULT_MAX_CAUSATION_DEPTH,
    automation_actors: frozenset[str] = AUTOMATION_ACTORS,
) -> bool:
    """An event caused by automation fires only rules with `on_automation`, and only up to
    causation depth `max_depth`; any other event passes."""
    if not caused_by_automation(event, automation_actors=automation_actors):
        return True
    return body.on_automation and event.metadata.causation_depth <= max_depth


def fires(
    rule: RuleVersion,
    event: Envelope,
    ticket: Mapping[str, Any] | None,
    *,
    related: Mapping[str, Mapping[str, Any]] | None = None,
    max_depth: int = DEFAULT_MAX_CAUSATION_DEPTH,
    automation_actors: frozenset[str] = AUTOMATION_ACTORS,
) -> bool:
    """Whether `rule` fires on `event`, given the ticket as it was right after the event.

    The event must be one of the trigger's types and pass its options (`from`/`to`, `kind`,
    `after`) and the loop guard; then the conditions hold over the ticket paths, `trigger` and
    `related` (alert, incident). A shadow rule fires too (its job ends skipped). Whether the
    rule is enabled is the caller's to check: a dry run evaluates drafts."""
    trigger = TRIGGERS[rule.body.trigger.event]
    if event.type not in trigger.event_types:
        return False
    if decides_own_request(rule, event):
        return False
    if not loop_guard_allows(
        rule.body, event, max_depth=max_depth, automation_actors=automation_actors
    ):
        return False
    context = condition_context(trigger, event, ticket, related)
    if not trigger.accepts(rule.body.trigger, context["trigger"]):
        return False
    return rule.body.conditions is None or evaluate(rule.body.conditions, context)


def decides_own_request(rule: RuleVersion, event: Envelope) -> bool:
    """Whether `event` is the decision of a request this very rule's gate opened: a rule never
    fires on that (a gated rule on `approval.decided` would otherwise lock the ticket again on
    every decision of its own, for ever)."""
    return event.type == "ticket.approval_decided" and event.data.get("rule_id") == rule.rule_id


def job_id(rule_id: str, rule_version: int, trigger_event_id: UUID | str) -> str:
    """The id of the job (and `job-<id>` its stream) of one firing: SHA-256, as 64 hex digits,
    over `opsledger.job.v1`, the rule id, the version in decimal and the event id in canonical
    UUID form (lowercase, hyphenated), each as UTF-8 preceded by its byte length as 8 bytes
    big-endian. Length prefixes make the encoding injective: no two triples share it."""
    if isinstance(rule_version, bool) or rule_version < 1:
        raise ValueError("rule_version is a positive integer")
    parts = (JOB_ID_TAG, rule_id, str(rule_version), str(UUID(str(trigger_event_id))))
    digest = hashlib.sha256()
    for part in parts:
        encoded = part if isinstance(part, bytes) else part.encode("utf-8")
        digest.update(len(encoded).to_bytes(8, "big"))
        digest.update(encoded)
    return digest.hexdigest()


def job_stream(job: str) -> str:
    return f"job-{job}"


_APPROVAL_IDS: Final = uuid.UUID("0b7f3c52-96d1-4a57-8f0e-2c6a4d9e1b38")


def approval_id(job: str) -> str:
    """The id of the approval request of a gated firing's job: one request per firing, so every
    service (tickets taking the lock, rules, approvals, the executor) derives the same id."""
    return str(uuid.uuid5(_APPROVAL_IDS, job))
