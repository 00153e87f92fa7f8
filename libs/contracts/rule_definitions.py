"""A rule as written and as read, the params of each action type, and a job (re-exported by
`libs.contracts.rules`, the rules contract).

Names and shapes are api.md's ("Automation"). A rule's `enabled` is state, not definition: the
versioned part is `RuleBody`, and `RuleDefinition` adds `enabled` as the API takes it. The shape
is checked here (types, lengths, counts); what needs the trigger or the action type (condition
paths, action params, templates) is checked by `services/rules/validation.py`, which answers
`INVALID_RULE` with one `RuleErrorDetail` per error. The params models are here so that the
executor validates and runs the very shape the rule was validated with. Statuses, priorities,
roles, modes and skip reasons are the event catalog's.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, ClassVar, Final, Literal
from uuid import UUID

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from libs.events.catalog.people import RoleName
from libs.events.catalog.rules import RuleMode, SkipReason
from libs.events.catalog.tickets import TicketPriority, TicketStatus
from libs.events.conditions import Condition, parse_duration

MAX_NAME: Final = 200
MAX_ID: Final = 200
MAX_ACTIONS: Final = 20
MAX_TEMPLATE: Final = 4_000
"""Characters of one text param (a template)."""
MAX_PARAMS_BYTES: Final = 16 * 1024
"""One action's params, as compact UTF-8 JSON."""
MAX_APPROVERS: Final = 50
MAX_ANNOUNCE: Final = 10
MAX_ROUND_ROBIN: Final = 100

TriggerName = Literal[
    "ticket.created", "ticket.status_changed", "ticket.priority_changed", "ticket.assigned",
    "ticket.commented", "ticket.tagged", "sla.warning", "sla.breached", "ticket.stale",
    "approval.decided", "alert.received", "incident.analyzed", "job.dead_lettered",
]  # fmt: skip
SlaKind = Literal["response", "resolution"]
ActionType = Literal[
    "assign", "set_status", "set_priority", "add_tag", "notify", "email", "slack", "discord",
    "teams", "mattermost", "webhook", "escalate", "run_runbook",
]  # fmt: skip
JobState = Literal[
    "queued", "pending_approval", "running", "retry_scheduled", "succeeded", "skipped",
    "dead_lettered",
]  # fmt: skip


def json_size(value: Any) -> int:
    """Bytes of `value` as compact UTF-8 JSON."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
    return len(text.encode("utf-8", errors="replace"))


def _at_most_bytes(limit: int) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        if json_size(value) > limit:
            raise ValueError(f"must be at most {limit} bytes as JSON")
        return value

    return check


def _duration(text: str) -> str:
    seconds = parse_duration(text)
    if seconds is None or seconds <= 0:
        raise ValueError("must be a duration such as '30m', '2h', '7d' or '1h30m'")
    return text


Id = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_ID)]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_NAME)]
Duration = Annotated[str, Field(min_length=1, max_length=40), AfterValidator(_duration)]
Template = Annotated[str, Field(min_length=1, max_length=MAX_TEMPLATE)]
JsonParams = Annotated[dict[str, Any], AfterValidator(_at_most_bytes(MAX_PARAMS_BYTES))]


class _Shape(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TriggerIn(_Shape):
    """`{event, from?, to?}` for status changes, `{event, kind?}` for sla.*, `{event, after}` for
    ticket.stale; which options each trigger takes is libs/rules/triggers.py's."""

    model_config = ConfigDict(validate_by_name=True, serialize_by_alias=True)

    event: TriggerName
    from_: TicketStatus | None = Field(default=None, alias="from")
    to: TicketStatus | None = None
    kind: SlaKind | None = None
    after: Duration | None = None


class ActionIn(_Shape):
    """One action: its params are checked against `ACTION_PARAMS[type]` by the validator."""

    type: ActionType
    params: JsonParams = Field(default_factory=dict)


class Approvers(_Shape):
    users: list[Id] = Field(default_factory=list, max_length=MAX_APPROVERS)
    roles: list[RoleName] = Field(default_factory=list, max_length=3)

    @model_validator(mode="after")
    def _someone(self) -> Approvers:
        if not self.users and not self.roles:
            raise ValueError("name at least one approver: a user or a role")
        return self


class ApprovalIn(_Shape):
    approvers: Approvers
    quorum: int = Field(default=1, ge=1, le=MAX_APPROVERS)
    expires_in: Duration = "7d"
    escalate_after: Duration | None = None
    announce: list[Id] = Field(default_factory=list, max_length=MAX_ANNOUNCE)
    """Webhook ids of chat endpoints the request is posted to."""

    @model_validator(mode="after")
    def _quorum_reachable(self) -> ApprovalIn:
        if not self.approvers.roles and self.quorum > len(set(self.approvers.users)):
            raise ValueError("quorum is larger than the number of approvers")
        return self


class RuleBody(_Shape):
    """What a rule version is: every PATCH that changes any of this makes a new version."""

    name: Name
    mode: RuleMode = "active"
    trigger: TriggerIn
    conditions: Condition | None = None
    """None: every event of the trigger fires the rule."""
    actions: list[ActionIn] = Field(min_length=1, max_length=MAX_ACTIONS)
    approval: ApprovalIn | None = None
    on_automation: bool = False


class RuleDefinition(RuleBody):
    """A rule as POST takes it (and `rules apply` reads it)."""

    enabled: bool = True


class RuleOut(RuleDefinition):
    """A rule as read."""

    id: str
    version: int = Field(ge=1)
    created_at: datetime
    updated_at: datetime


class RuleErrorDetail(BaseModel):
    """One error of an `INVALID_RULE` answer: where (`actions[0].params.tag`) and what."""

    model_config = ConfigDict(frozen=True)

    path: str
    message: str


# --- the params of each action type ------------------------------------------------------------


class ActionParams(_Shape):
    """Base of the params models; `templates` names the fields whose text is a template (in a
    JSON value, every string in it)."""

    templates: ClassVar[tuple[str, ...]] = ()


class AssignParams(ActionParams):
    """Exactly one of `{user_id}`, `{on_call: schedule_id}`, `{round_robin: [user_id]}`."""

    user_id: Id | None = None
    on_call: Id | None = None
    round_robin: list[Id] | None = Field(default=None, min_length=1, max_length=MAX_ROUND_ROBIN)

    @model_validator(mode="after")
    def _exactly_one(self) -> AssignParams:
        given = [v for v in (self.user_id, self.on_call, self.round_robin) if v is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of user_id, on_call or round_robin")
        return self


class SetStatusParams(ActionParams):
    status: TicketStatus


class SetPriorityParams(ActionParams):
    priority: TicketPriority


class AddTagParams(ActionParams):
    tag: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=50)]


Recipient = Annotated[
    str, Field(pattern=r"^(requester|assignee|user:\S{1,200}|role:(requester|operator|admin))$")
]


class NotifyParams(ActionParams):
    templates = ("message",)
    to: Recipient
    message: Template


class EmailParams(ActionParams):
    templates = ("to", "subject", "body")
    to: Template
    subject: Template
    body: Template


class OutgoingParams(ActionParams):
    """slack, discord, teams, mattermost, webhook: a registered endpoint and a text `message` or a
    JSON `body` (every string in it a template), at most one of the two."""

    templates = ("message", "body")
    webhook_id: Id
    message: Template | None = None
    body: Annotated[Any, AfterValidator(_at_most_bytes(MAX_PARAMS_BYTES))] = None

    @model_validator(mode="after")
    def _message_or_body(self) -> OutgoingParams:
        if self.message is not None and self.body is not None:
            raise ValueError("give a message or a body, not both")
        return self


class EscalateParams(ActionParams):
    policy_id: Id


class RunRunbookParams(ActionParams):
    templates = ("params",)
    runbook_id: Id
    params: dict[str, Any] = Field(default_factory=dict)


ACTION_PARAMS: Final[dict[str, type[ActionParams]]] = {
    "assign": AssignParams,
    "set_status": SetStatusParams,
    "set_priority": SetPriorityParams,
    "add_tag": AddTagParams,
    "notify": NotifyParams,
    "email": EmailParams,
    "slack": OutgoingParams,
    "discord": OutgoingParams,
    "teams": OutgoingParams,
    "mattermost": OutgoingParams,
    "webhook": OutgoingParams,
    "escalate": EscalateParams,
    "run_runbook": RunRunbookParams,
}
"""The params model of every action type (a test checks it covers `ActionType`)."""


# --- a job ---------------------------------------------------------------------------------------


class JobOut(BaseModel):
    """A job as read: one firing of one rule version on one triggering event."""

    id: str
    rule_id: str
    rule_version: int = Field(ge=1)
    action: ActionType | Literal["announce_approval"] | None
    """The step's action: a rule's, or `announce_approval`, the post of an approval request to a
    chat endpoint, which the executor queues itself."""
    """The action the job is at (the first step not done; the last one once it has ended)."""
    ticket: str | None
    incident: str | None
    trigger_event_id: UUID
    state: JobState
    attempts: int = Field(ge=0)
    last_error: str | None
    approval_id: str | None
    created_at: datetime
    updated_at: datetime
    skip_reason: SkipReason | None = None
    """Why a `skipped` job was skipped (beyond api.md's shape: additive)."""
