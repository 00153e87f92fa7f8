"""Rules, pure: create / revise / enable / disable / archive, whether a rule version fires on an
event (trigger, options, conditions, loop guard), and the id of the job a firing makes.

A refusal is a `Refusal` (a code and a message, no HTTP status). The caller validates a
definition first (`validation.validate_rule`); this module trusts what it is given.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final
from uuid import UUID

from libs.contracts.rules import RuleBody, RuleDefinition
from libs.events.catalog.rules import (
    JobQueued,
    JobSkipped,
    RuleArchived,
    RuleCreated,
    RuleDisabled,
    RuleEnabled,
    RuleRevised,
)
from libs.events.conditions import evaluate
from libs.events.envelope import ActorKind, Envelope
from libs.events.registry import DomainEvent
from services.rules.refusals import Refusal, archived, not_found
from services.rules.triggers import TRIGGERS, condition_context, ticket_of

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


@dataclass(frozen=True)
class RuleState:
    """A rule as its stream leaves it."""

    rule_id: str
    version: int
    body: RuleBody
    enabled: bool
    archived: bool = False

    @property
    def current(self) -> RuleVersion:
        return RuleVersion(self.rule_id, self.version, self.body)

    @property
    def live(self) -> bool:
        """Whether the rule fires on new events."""
        return self.enabled and not self.archived


def rule_stream(rule_id: str) -> str:
    return f"rule-{rule_id}"


def job_stream(job: str) -> str:
    return f"job-{job}"


def body_json(definition: RuleBody) -> dict[str, Any]:
    """The versioned part of a definition as stored: `RuleBody` JSON, `enabled` left out."""
    dumped: dict[str, Any] = definition.model_dump(mode="json", by_alias=True, exclude={"enabled"})
    return dumped


# --- writing rules -------------------------------------------------------------------------------


def decide_create(
    state: RuleState | None, *, rule_id: str, definition: RuleDefinition, by: str
) -> list[DomainEvent]:
    """Version 1 of a new rule."""
    if state is not None:
        raise Refusal("RULE_EXISTS", "a rule with this id exists", {"rule_id": rule_id})
    body = body_json(definition)
    return [RuleCreated(rule_id=rule_id, definition=body, enabled=definition.enabled, by=by)]


def decide_revise(
    state: RuleState | None, *, definition: RuleDefinition, by: str
) -> list[DomainEvent]:
    """A PATCH: a new version when the definition changed (carrying all of it), an enable or
    disable when `enabled` did; nothing at all when neither did (so applying is idempotent)."""
    rule = _writable(state)
    events: list[DomainEvent] = []
    body = body_json(definition)
    if body != body_json(rule.body):
        events.append(
            RuleRevised(rule_id=rule.rule_id, version=rule.version + 1, definition=body, by=by)
        )
    if definition.enabled != rule.enabled:
        toggle = RuleEnabled if definition.enabled else RuleDisabled
        events.append(toggle(rule_id=rule.rule_id, by=by))
    return events


def decide_enable(state: RuleState | None, *, enabled: bool, by: str) -> list[DomainEvent]:
    rule = _writable(state)
    if rule.enabled == enabled:
        return []
    return [(RuleEnabled if enabled else RuleDisabled)(rule_id=rule.rule_id, by=by)]


def decide_archive(state: RuleState | None, *, by: str) -> list[DomainEvent]:
    """DELETE: disabled and archived; archiving an archived rule changes nothing."""
    if state is None:
        raise not_found()
    if state.archived:
        return []
    disabled = [RuleDisabled(rule_id=state.rule_id, by=by)] if state.enabled else []
    return [*disabled, RuleArchived(rule_id=state.rule_id, by=by)]


def _writable(state: RuleState | None) -> RuleState:
    if state is None:
        raise not_found()
    if state.archived:
        raise archived(state.rule_id)
    return state


def evolve(state: RuleState | None, event: DomainEvent) -> RuleState | None:
    """The rule after `event`."""
    match event:
        case RuleCreated():
            body = RuleBody.model_validate(event.definition)
            return RuleState(event.rule_id, 1, body, event.enabled)
    if state is None:
        return None
    match event:
        case RuleRevised():
            body = RuleBody.model_validate(event.definition)
            return RuleState(state.rule_id, event.version, body, state.enabled, state.archived)
        case RuleEnabled() | RuleDisabled():
            enabled = isinstance(event, RuleEnabled)
            return RuleState(state.rule_id, state.version, state.body, enabled, state.archived)
        case RuleArchived():
            return RuleState(state.rule_id, state.version, state.body, False, True)
    return state


def fold(events: Iterable[DomainEvent]) -> RuleState | None:
    state: RuleState | None = None
    for item in events:
        state = evolve(state, item)
    return state


# --- firing --------------------------------------------------------------------------------------


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
    if not loop_guard_allows(
        rule.body, event, max_depth=max_depth, automation_actors=automation_actors
    ):
        return False
    context = condition_context(trigger, event, ticket, related)
    if not trigger.accepts(rule.body.trigger, context["trigger"]):
        return False
    return rule.body.conditions is None or evaluate(rule.body.conditions, context)


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


def decide_firing(
    rule: RuleVersion,
    event: Envelope,
    ticket: Mapping[str, Any] | None,
    *,
    related: Mapping[str, Mapping[str, Any]] | None = None,
) -> list[DomainEvent]:
    """The first events of the job of a firing (append to `job_stream(job_id(...))` with "no
    stream yet"): `job.queued`, and for a shadow rule `job.skipped` (reason shadow) at once.
    `ticket` and `related` must be JSON-shaped: the job keeps them as its template context."""
    trigger = TRIGGERS[rule.body.trigger.event]
    job = job_id(rule.rule_id, rule.version, event.id)
    context: dict[str, Any] = {
        "ticket": dict(ticket or {}),
        "rule": {"id": rule.rule_id, "version": rule.version, "name": rule.body.name},
        "job": {"id": job},
    }
    context.update(condition_context(trigger, event, None, related))  # trigger, alert, incident
    queued = JobQueued(
        job_id=job,
        rule_id=rule.rule_id,
        rule_version=rule.version,
        trigger=trigger.name,
        trigger_event_id=event.id,
        ticket=ticket_of(event) if trigger.on_ticket else None,
        mode=rule.body.mode,
        actions=[a.model_dump(mode="json") for a in rule.body.actions],
        context=context,
        approval=rule.body.approval.model_dump(mode="json") if rule.body.approval else None,
    )
    return [queued, JobSkipped(reason="shadow")] if rule.body.mode == "shadow" else [queued]
