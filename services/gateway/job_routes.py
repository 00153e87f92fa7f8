"""Job and webhook routes: authenticate, then ask the executor (NATS request/reply) by its
contract, `libs.contracts.jobs` (and `libs.contracts.deliveries`). Staff see and retry jobs;
admins manage webhook endpoints, which are never shown with their secret or a token in their
URL, and see and replay an event subscription's deliveries. No executor logic lives here."""

from __future__ import annotations

from typing import Annotated, TypeVar

from fastapi import APIRouter, Path, Query, Request, status
from pydantic import BaseModel, ValidationError

from libs.contracts import deliveries as delivery_contract
from libs.contracts import jobs as contract
from libs.contracts.jobs import JOB_ID, MAX_PAGE, WEBHOOK_ID
from libs.contracts.rules import JobOut, JobState
from libs.events.errors import ServiceError
from services.gateway.auth import AdminUser, StaffUser
from services.gateway.deps import DepsDep
from services.gateway.errors import error_responses
from services.gateway.forwarding import Cursor, Short, ask_as, request_of

router = APIRouter(prefix="/api/v1", tags=["jobs"], responses=error_responses(502, 503, 504))

JobId = Annotated[str, Path(pattern=JOB_ID, description="a job's id (64 hex digits)")]
WebhookId = Annotated[str, Path(pattern=WEBHOOK_ID, description="a webhook endpoint's id")]
PageLimit = Annotated[int, Query(ge=1, le=MAX_PAGE, description="the most items on this page")]

In = TypeVar("In", bound=BaseModel)
Out = TypeVar("Out")


@router.get("/jobs")
async def list_jobs(
    deps: DepsDep,
    request: Request,
    who: StaffUser,
    state: JobState | None = None,
    ticket: Short = None,
    rule: Short = None,
    limit: PageLimit = 50,
    cursor: Cursor = None,
) -> contract.JobPage:
    """Jobs, newest first, by state, ticket key and rule id."""
    query = request_of(
        contract.JobsListIn, state=state, ticket=ticket, rule=rule, limit=limit, cursor=cursor
    )
    return await ask_as(deps, request, who, contract.JOBS_LIST, query)


@router.get("/jobs/{id}")
async def get_job(deps: DepsDep, request: Request, who: StaffUser, id: JobId) -> contract.JobDetail:
    """A job and its history: every state change, attempt and error, in order."""
    return await ask_as(deps, request, who, contract.JOBS_GET, request_of(contract.JobIdIn, id=id))


@router.post("/jobs/{id}/retry")
async def retry_job(deps: DepsDep, request: Request, who: StaffUser, id: JobId) -> JobOut:
    """Run a dead-lettered job again, with a fresh budget of attempts (409 NOT_DEAD_LETTERED
    for a job in any other state)."""
    return await ask_as(
        deps, request, who, contract.JOBS_RETRY, request_of(contract.JobIdIn, id=id)
    )


@router.get("/webhooks")
async def list_webhooks(
    deps: DepsDep, request: Request, who: AdminUser, limit: PageLimit = 100, cursor: Cursor = None
) -> contract.WebhookPage:
    page = request_of(contract.WebhooksListIn, limit=limit, cursor=cursor)
    return await ask_as(deps, request, who, contract.WEBHOOKS_LIST, page)


@router.post("/webhooks", status_code=status.HTTP_201_CREATED)
async def create_webhook(
    deps: DepsDep, request: Request, who: AdminUser, body: contract.WebhookIn
) -> contract.WebhookOut:
    """Register an outgoing endpoint; its secret signs what is sent (`X-OpsLedger-Signature`)."""
    made = request_of(contract.WebhookCreateIn, **body.model_dump())
    return await ask_as(deps, request, who, contract.WEBHOOKS_CREATE, made)


@router.get("/webhooks/{id}")
async def get_webhook(
    deps: DepsDep, request: Request, who: AdminUser, id: WebhookId
) -> contract.WebhookOut:
    return await ask_as(
        deps, request, who, contract.WEBHOOKS_GET, request_of(contract.WebhookIdIn, id=id)
    )


@router.patch("/webhooks/{id}")
async def update_webhook(
    deps: DepsDep, request: Request, who: AdminUser, id: WebhookId, body: contract.WebhookPatch
) -> contract.WebhookOut:
    """The fields given replace the endpoint's; `"secret": null` removes its secret."""
    try:
        changes = contract.update_of(id, body)
    except ValidationError as exc:
        raise ServiceError.from_validation(exc) from None
    return await ask_as(deps, request, who, contract.WEBHOOKS_UPDATE, changes)


@router.delete("/webhooks/{id}")
async def delete_webhook(
    deps: DepsDep, request: Request, who: AdminUser, id: WebhookId
) -> contract.Removed:
    return await ask_as(
        deps, request, who, contract.WEBHOOKS_DELETE, request_of(contract.WebhookIdIn, id=id)
    )


@router.get("/webhooks/{id}/deliveries")
async def list_deliveries(
    deps: DepsDep,
    request: Request,
    who: AdminUser,
    id: WebhookId,
    state: delivery_contract.DeliveryState | None = None,
    limit: PageLimit = 50,
    cursor: Cursor = None,
) -> delivery_contract.DeliveryPage:
    """An event subscription's deliveries, newest first: each event sent to it, its attempts,
    last answer or error, and whether it is pending, delivered or dead-lettered."""
    query = request_of(
        delivery_contract.DeliveriesListIn, id=id, state=state, limit=limit, cursor=cursor
    )
    return await ask_as(deps, request, who, delivery_contract.DELIVERIES_LIST, query)


@router.post("/webhooks/{id}/replay")
async def replay_deliveries(
    deps: DepsDep,
    request: Request,
    who: AdminUser,
    id: WebhookId,
    body: delivery_contract.ReplayBody,
) -> delivery_contract.ReplayOut:
    """Re-send every matching event after the event at position `after` (0: from the start), in
    order, as new deliveries; the open ones (pending, or dead-lettered and holding their stream)
    are superseded. 409 NOT_A_SUBSCRIPTION for an endpoint without `events`, 422
    INVALID_POSITION for a position that holds no event."""
    replay = request_of(delivery_contract.ReplayIn, id=id, after=body.after)
    return await ask_as(deps, request, who, delivery_contract.REPLAY, replay)
