"""Rules, pure: create / revise / enable / disable / archive, and the first events of a firing's
job. Whether a rule version fires, and the job's id, are `libs/rules/firing.py`'s.

A refusal is a `Refusal` (a code and a message, no HTTP status). The caller validates a
definition first (`validation.validate_rule`); this module trusts what it is given.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from libs.contracts.rules import RuleBody, RuleDefinition
from libs.events.catalog.rules import (
    JobApprovalRequested,
    JobQueued,
    JobSkipped,
    RuleArchived,
    RuleCreated,
    RuleDisabled,
    RuleEnabled,
    RuleRevised,
)
from libs.events.envelope import Envelope
from libs.events.registry import DomainEvent
from libs.rules.firing import RuleVersion, approval_id, job_id
from libs.rules.triggers import TRIGGERS, condition_context, ticket_of
from services.rules.refusals import Refusal, archived, not_found


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


def decide_firing(
    rule: RuleVersion,
    event: Envelope,
    ticket: Mapping[str, Any] | None,
    *,
    related: Mapping[str, Mapping[str, Any]] | None = None,
) -> list[DomainEvent]:
    """The first events of the job of a firing (append to `job_stream(job_id(...))` with "no
    stream yet"): `job.queued`, then for a shadow rule `job.skipped` (reason shadow) at once,
    and for a gated one `job.approval_requested` (the approval the gate locked the ticket for).
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
    if rule.body.mode == "shadow":
        return [queued, JobSkipped(reason="shadow")]
    if rule.body.approval is not None:
        return [queued, JobApprovalRequested(approval_id=approval_id(job))]
    return [queued]
