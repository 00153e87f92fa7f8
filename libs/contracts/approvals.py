"""The approvals service's contract: its RPC methods with their request and answer models.

The approvals service serves each `Method`; the gateway calls them for `/api/v1/approvals` and
for the signed links of chat buttons (`/approve?...`), which decide as the approver the link was
issued to (`via="link"`, with the link's id so a second use is refused)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Final, Literal

from pydantic import BaseModel, ConfigDict, Field

from libs.events.catalog.approvals import Outcome, Via, Vote
from libs.events.contract import Method

Id = Annotated[str, Field(min_length=1, max_length=100)]
Reason = Annotated[str, Field(max_length=2000)]
MAX_PAGE: Final = 200
ApprovalStatus = Literal["pending", "approved", "rejected", "expired"]


class Body(BaseModel):
    """A request: unknown keys are refused."""

    model_config = ConfigDict(extra="forbid")


class ApprovalsListIn(Body):
    status: ApprovalStatus | None = None
    ticket: Id | None = None
    limit: Annotated[int, Field(ge=1, le=MAX_PAGE)] = 50
    cursor: Annotated[str, Field(max_length=500)] | None = None


class ReasonIn(Body):
    """`POST /approvals/{id}/approve` and `/reject`: why, optionally."""

    reason: Reason | None = None


class ApprovalIdIn(Body):
    id: Id


class DecideIn(Body):
    """A vote by the caller (or, `via="link"`, by `user_id`, the approver a checked signed link
    was issued to; only the gateway's link route sends that)."""

    id: Id
    vote: Vote
    reason: Reason | None = None
    via: Via = "api"
    user_id: Id | None = None
    link_id: Annotated[str, Field(min_length=16, max_length=100)] | None = None


class DecisionOut(BaseModel):
    user_id: str
    decision: Vote
    reason: str | None
    at: datetime
    via: Via


class Approvers(BaseModel):
    users: list[str]
    roles: list[str]


class ApprovalOut(BaseModel):
    id: str
    ticket: str | None
    incident: str | None
    rule_id: str
    rule_version: int
    job_ids: list[str]
    approvers: Approvers
    quorum: int
    status: ApprovalStatus
    decisions: list[DecisionOut]
    expires_at: datetime
    summary: str
    created_at: datetime
    decided_at: datetime | None = None
    outcome_reason: str | None = None


class ApprovalPage(BaseModel):
    items: list[ApprovalOut]
    next_cursor: str | None = None


class LinkCheckIn(Body):
    """May `user_id` still decide `id` (for the confirmation page of a signed link)?"""

    id: Id
    user_id: Id
    link_id: Annotated[str, Field(min_length=16, max_length=100)]


class LinkCheckOut(BaseModel):
    approval: ApprovalOut
    usable: bool
    why_not: str | None = None


# methods: `ns.rpc.approvals.<name>`

APPROVALS_LIST: Method[ApprovalsListIn, ApprovalPage] = Method(
    "approvals", "approvals.list", ApprovalsListIn, ApprovalPage
)
APPROVALS_GET: Method[ApprovalIdIn, ApprovalOut] = Method(
    "approvals", "approvals.get", ApprovalIdIn, ApprovalOut
)
APPROVALS_DECIDE: Method[DecideIn, ApprovalOut] = Method(
    "approvals", "approvals.decide", DecideIn, ApprovalOut
)
APPROVALS_LINK_CHECK: Method[LinkCheckIn, LinkCheckOut] = Method(
    "approvals", "approvals.link_check", LinkCheckIn, LinkCheckOut
)

__all__ = [
    "APPROVALS_DECIDE",
    "APPROVALS_GET",
    "APPROVALS_LINK_CHECK",
    "APPROVALS_LIST",
    "ApprovalIdIn",
    "ApprovalOut",
    "ApprovalPage",
    "ApprovalStatus",
    "ApprovalsListIn",
    "Approvers",
    "DecideIn",
    "DecisionOut",
    "LinkCheckIn",
    "LinkCheckOut",
    "Outcome",
    "ReasonIn",
]  # fmt: skip
