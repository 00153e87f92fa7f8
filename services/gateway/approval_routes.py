"""Approval routes: authenticate, then ask the approvals service by its contract,
`libs.contracts.approvals`. Staff read requests; a vote is the caller's own, and the approvals
service decides whether they may cast it (403 NOT_AN_APPROVER, 409 ALREADY_DECIDED)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request

from libs.contracts import approvals as contract
from libs.contracts.approvals import MAX_PAGE, ApprovalStatus
from libs.events.catalog.approvals import Vote
from services.gateway.auth import CurrentUser, Principal, StaffUser
from services.gateway.deps import DepsDep
from services.gateway.errors import error_responses
from services.gateway.forwarding import Cursor, Short, ask_as, request_of

router = APIRouter(prefix="/api/v1", tags=["approvals"], responses=error_responses(502, 503, 504))

ApprovalId = Annotated[
    str, Path(min_length=1, max_length=100, description="an approval request's id")
]
PageLimit = Annotated[int, Query(ge=1, le=MAX_PAGE, description="the most items on this page")]


@router.get("/approvals")
async def list_approvals(
    deps: DepsDep,
    request: Request,
    who: StaffUser,
    status: ApprovalStatus | None = None,
    ticket: Short = None,
    limit: PageLimit = 50,
    cursor: Cursor = None,
) -> contract.ApprovalPage:
    """Approval requests, newest first; `status=pending` is the approvals inbox."""
    query = request_of(
        contract.ApprovalsListIn, status=status, ticket=ticket, limit=limit, cursor=cursor
    )
    return await ask_as(deps, request, who, contract.APPROVALS_LIST, query)


@router.get("/approvals/{id}")
async def get_approval(
    deps: DepsDep, request: Request, who: StaffUser, id: ApprovalId
) -> contract.ApprovalOut:
    """An approval request with its decisions."""
    query = request_of(contract.ApprovalIdIn, id=id)
    return await ask_as(deps, request, who, contract.APPROVALS_GET, query)


@router.post("/approvals/{id}/approve")
async def approve(
    deps: DepsDep,
    request: Request,
    who: CurrentUser,
    id: ApprovalId,
    body: contract.ReasonIn | None = None,
) -> contract.ApprovalOut:
    """Approve as yourself; the request is approved once its quorum has approved."""
    return await _vote(deps, request, who, id, "approve", body)


@router.post("/approvals/{id}/reject")
async def reject(
    deps: DepsDep,
    request: Request,
    who: CurrentUser,
    id: ApprovalId,
    body: contract.ReasonIn | None = None,
) -> contract.ApprovalOut:
    """Reject as yourself: one rejection decides; the gated jobs end skipped."""
    return await _vote(deps, request, who, id, "reject", body)


async def _vote(
    deps: DepsDep,
    request: Request,
    who: Principal,
    approval_id: str,
    vote: Vote,
    body: contract.ReasonIn | None,
) -> contract.ApprovalOut:
    reason = body.reason if body is not None else None
    cast = request_of(contract.DecideIn, id=approval_id, vote=vote, reason=reason)
    return await ask_as(deps, request, who, contract.APPROVALS_DECIDE, cast)
