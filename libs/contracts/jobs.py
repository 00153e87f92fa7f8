"""The executor's contract: jobs (list, get with history, retry) and registered webhook endpoints
(admin CRUD), every method with its request and answer models.

A job as read is `libs.contracts.rules.JobOut` (api.md's "A job"); `JobDetail` adds its history,
one item per event of its stream: every state change, attempt and error. A webhook endpoint as
read never shows its secret or a token in its URL (`url` is masked, `has_secret` says whether
one is set)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from libs.contracts.rules import JobOut, JobState
from libs.events.catalog.executor import WebhookKind
from libs.events.contract import Method
from libs.events.envelope import Actor

MAX_PAGE: Final = 200
JOB_ID: Final = r"^[0-9a-f]{64}$"
"""A job's id: the SHA-256 of its firing (libs/rules/firing.job_id)."""
WEBHOOK_ID: Final = r"^wh_[0-9a-f]{16}$"
MAX_URL: Final = 2_000
MAX_EVENT_PATTERNS: Final = 50

Id = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Secret = Annotated[str, Field(min_length=1, max_length=500)]
Pattern = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[a-z_*][a-z_.*]*$")]
Cursor = Annotated[str, Field(max_length=500)]


class Body(BaseModel):
    """A request: unknown keys are refused."""

    model_config = ConfigDict(extra="forbid")


class JobsListIn(Body):
    state: JobState | None = None
    ticket: Id | None = None
    rule: Id | None = None
    limit: Annotated[int, Field(ge=1, le=MAX_PAGE)] = 50
    cursor: Cursor | None = None


class JobIdIn(Body):
    id: Annotated[str, Field(min_length=1, max_length=100)]


class JobPage(BaseModel):
    items: list[JobOut]
    next_cursor: str | None = None


class JobHistoryItem(BaseModel):
    """One event of the job's stream, and the state it left the job in."""

    version: int
    type: str
    at: datetime
    actor: Actor
    state: JobState
    attempt: int | None = None
    step: int | None = None
    action: str | None = None
    error: str | None = None
    detail: dict[str, Any] = Field(default_factory=dict)
    """What else the event says (a lease's end, a retry's due time, a step's result)."""


class JobDetail(JobOut):
    history: list[JobHistoryItem]


def _http_url(value: str) -> str:
    if not value.lower().startswith(("https://", "http://")):
        raise ValueError("must be an http:// or https:// URL")
    return value


class WebhookIn(Body):
    """An outgoing endpoint: `events` makes a `webhook` endpoint an event subscription (every
    matching event POSTed to it: services/executor/subscriptions/); `include_internal` opts a
    subscription in to internal comments (off by default). A chat kind takes no `events`."""

    name: Name
    kind: WebhookKind = "webhook"
    url: Annotated[str, Field(min_length=8, max_length=MAX_URL)]
    secret: Secret | None = None
    events: list[Pattern] | None = Field(default=None, max_length=MAX_EVENT_PATTERNS)
    include_internal: bool = False

    _url = field_validator("url")(_http_url)


class WebhookPatch(Body):
    """PATCH: the fields given replace the endpoint's (`secret: null` removes it)."""

    name: Name | None = None
    kind: WebhookKind | None = None
    url: Annotated[str, Field(min_length=8, max_length=MAX_URL)] | None = None
    secret: Secret | None = None
    events: list[Pattern] | None = Field(default=None, max_length=MAX_EVENT_PATTERNS)
    include_internal: bool | None = None

    @field_validator("url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return None if value is None else _http_url(value)


class WebhookCreateIn(WebhookIn):
    pass


class WebhookUpdateIn(WebhookPatch):
    """A PATCH as the executor takes it: a field left None is unchanged (over the bus every
    field is sent), and `clear` names the fields to remove."""

    id: Id
    clear: list[Literal["secret", "events"]] = Field(default_factory=list, max_length=2)


def update_of(webhook_id: str, patch: WebhookPatch) -> WebhookUpdateIn:
    """The RPC request of an HTTP PATCH: a field given as null is cleared."""
    given = patch.model_dump(exclude_unset=True)
    clear = [name for name in ("secret", "events") if name in given and given[name] is None]
    return WebhookUpdateIn(id=webhook_id, clear=clear, **given)


class WebhookIdIn(Body):
    id: Id


class WebhooksListIn(Body):
    limit: Annotated[int, Field(ge=1, le=MAX_PAGE)] = 100
    cursor: Cursor | None = None


class WebhookOut(BaseModel):
    id: str
    name: str
    kind: WebhookKind
    url: str
    """Masked: scheme, host and first path segment; every other part `****`."""
    has_secret: bool
    events: list[str] | None
    include_internal: bool = False
    created_at: datetime
    updated_at: datetime


class WebhookPage(BaseModel):
    items: list[WebhookOut]
    next_cursor: str | None = None


class Removed(BaseModel):
    id: str
    removed: bool = True


# methods: `ns.rpc.executor.<name>`

JOBS_LIST: Method[JobsListIn, JobPage] = Method("executor", "jobs.list", JobsListIn, JobPage)
JOBS_GET: Method[JobIdIn, JobDetail] = Method("executor", "jobs.get", JobIdIn, JobDetail)
JOBS_RETRY: Method[JobIdIn, JobOut] = Method("executor", "jobs.retry", JobIdIn, JobOut)
WEBHOOKS_LIST: Method[WebhooksListIn, WebhookPage] = Method(
    "executor", "webhooks.list", WebhooksListIn, WebhookPage
)
WEBHOOKS_GET: Method[WebhookIdIn, WebhookOut] = Method(
    "executor", "webhooks.get", WebhookIdIn, WebhookOut
)
WEBHOOKS_CREATE: Method[WebhookCreateIn, WebhookOut] = Method(
    "executor", "webhooks.create", WebhookCreateIn, WebhookOut
)
WEBHOOKS_UPDATE: Method[WebhookUpdateIn, WebhookOut] = Method(
    "executor", "webhooks.update", WebhookUpdateIn, WebhookOut
)
WEBHOOKS_DELETE: Method[WebhookIdIn, Removed] = Method(
    "executor", "webhooks.delete", WebhookIdIn, Removed
)
