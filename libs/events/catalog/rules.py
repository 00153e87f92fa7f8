"""Events of rules and jobs, written by the rules service (jobs' later steps by the executor).

Streams: `rule-<id>` (a rule: its definition versions, enabled/disabled, archived) and
`job-<id>` (one firing: `<id>` is `libs/rules/firing.job_id(rule id, rule version,
triggering event id)`, a SHA-256 hex digest, and `job.queued` is appended with "no stream yet",
so one firing makes one job however often its event is delivered).

A rule's version counts its definitions: `rule.created` is version 1 and each `rule.revised`
the next; enabling, disabling and archiving change no version. `definition` is the JSON of a
`libs.contracts.rules.RuleBody`, whole, as validated.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import Field

from libs.events.registry import DomainEvent, event

RuleMode = Literal["active", "shadow"]
SkipReason = Literal["shadow", "approval_rejected", "approval_expired"]


@event("rule.created")
class RuleCreated(DomainEvent):
    """First event of `rule-<id>`: definition version 1."""

    rule_id: str
    definition: dict[str, Any]
    enabled: bool
    by: str


@event("rule.revised")
class RuleRevised(DomainEvent):
    """A new definition version (a PATCH that changed it), carrying the whole new definition."""

    rule_id: str
    version: int = Field(ge=2)
    definition: dict[str, Any]
    by: str


@event("rule.enabled")
class RuleEnabled(DomainEvent):
    rule_id: str
    by: str


@event("rule.disabled")
class RuleDisabled(DomainEvent):
    rule_id: str
    by: str


@event("rule.archived")
class RuleArchived(DomainEvent):
    """DELETE: the rule no longer fires or shows in lists; its stream stays as history."""

    rule_id: str
    by: str


@event("job.queued")
class JobQueued(DomainEvent):
    """First event of `job-<id>`: a rule version fired on an event. Everything the executor
    needs is here (it reads no rules table): the actions to run and what the conditions saw."""

    job_id: str
    rule_id: str
    rule_version: int = Field(ge=1)
    trigger: str
    trigger_event_id: UUID
    ticket: str | None
    incident: str | None = None
    mode: RuleMode
    actions: list[dict[str, Any]]
    """The rule version's `actions`, as `[{type, params}]` (params not yet rendered)."""
    context: dict[str, Any]
    """The condition and template context at firing: the ticket right after the event, and
    `trigger` (plus `alert` / `incident` for alert triggers)."""
    approval: dict[str, Any] | None = None
    """The rule version's approval gate (`ApprovalIn` as JSON), None for none."""


@event("job.approval_requested")
class JobApprovalRequested(DomainEvent):
    """The job waits for `approval_id` (state `pending_approval`)."""

    approval_id: str


@event("job.approved")
class JobApproved(DomainEvent):
    """Its approval was granted: the job is queued again to run."""

    approval_id: str


@event("job.started")
class JobStarted(DomainEvent):
    """A replica claimed the job (appended at its expected version: one winner) until
    `lease_until`; after that another replica may claim it again."""

    attempt: int = Field(ge=1)
    worker: str
    lease_until: datetime


@event("job.step_succeeded")
class JobStepSucceeded(DomainEvent):
    """Action `step` (0-based) is done; a retry resumes at the first step not done."""

    step: int = Field(ge=0)
    action: str
    attempt: int = Field(ge=1)
    result: dict[str, Any] = Field(default_factory=dict)


@event("job.step_failed")
class JobStepFailed(DomainEvent):
    step: int = Field(ge=0)
    action: str
    attempt: int = Field(ge=1)
    error: str
    retryable: bool = True
    """False for an error no retry can mend (a refused command, a template that fails)."""


@event("job.retry_scheduled")
class JobRetryScheduled(DomainEvent):
    """The next attempt is due at `due_at` (a durable timer fires it)."""

    attempt: int = Field(ge=2)
    due_at: datetime


@event("job.retry_due")
class JobRetryDue(DomainEvent):
    """Appended by the durable timer of a `job.retry_scheduled`: attempt `attempt` may start."""

    attempt: int = Field(ge=2)


@event("job.lease_expired")
class JobLeaseExpired(DomainEvent):
    """Appended by the durable timer of a `job.started`: when that attempt is still running,
    its executor is taken to have died; the job may be claimed again (the attempt counts)."""

    attempt: int = Field(ge=1)
    worker: str


@event("job.succeeded")
class JobSucceeded(DomainEvent):
    attempts: int = Field(ge=1)


@event("job.skipped")
class JobSkipped(DomainEvent):
    """The job ends without acting: a shadow rule's, or one whose approval was refused/expired."""

    reason: SkipReason
    approval_id: str | None = None


@event("job.dead_lettered")
class JobDeadLettered(DomainEvent):
    """The last attempt failed. Also a trigger, so it names its rule and ticket itself."""

    rule_id: str
    ticket: str | None
    attempts: int = Field(ge=1)
    last_error: str


@event("job.retry_requested")
class JobRetryRequested(DomainEvent):
    """`POST /jobs/{id}/retry`: a dead-lettered job is queued to run again."""

    by: str
