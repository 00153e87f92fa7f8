"""Automation rule routes: authenticate, then ask the rules service (NATS request/reply) by its
contract, `libs.contracts.rules`. Staff read, admins write; no rule logic lives here.

A rule's body goes to the service as the raw JSON it came as: the service checks it whole, so
every error of a rule, its shape included, is one 422 `INVALID_RULE` naming each error's path
(never the generic `VALIDATION_ERROR` of a typed body)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Body, Path, Query, Request, status
from pydantic import BaseModel, Field

from libs.contracts import rules as contract
from libs.contracts.rules import MAX_PAGE, RULE_ID, TEMPLATE_KEY
from libs.events.errors import ServiceError
from libs.events.inputs import input_problem
from services.gateway.auth import AdminUser, StaffUser
from services.gateway.deps import DepsDep
from services.gateway.errors import error_responses
from services.gateway.forwarding import Cursor, ask_as, request_of

router = APIRouter(prefix="/api/v1", tags=["rules"], responses=error_responses(502, 503, 504))

RuleIdPath = Annotated[str, Path(pattern=RULE_ID, description="a rule's id")]
PageLimit = Annotated[int, Query(ge=1, le=MAX_PAGE, description="the most items on this page")]
EXAMPLE: dict[str, Any] = {
    "name": "Tag production deployments",
    "enabled": True,
    "mode": "active",
    "trigger": {"event": "ticket.created"},
    "conditions": {"field": "fields.environment", "op": "eq", "value": "production"},
    "actions": [{"type": "add_tag", "params": {"tag": "prod"}}],
    "approval": None,
    "on_automation": False,
}
RuleJson = Annotated[
    Any,
    Body(
        description="a rule definition (api.md 'A rule'), checked whole by the rules service",
        examples=[EXAMPLE],
    ),
]

AN_OBJECT: dict[str, Any] = {
    "requestBody": {"content": {"application/json": {"schema": {"type": "object"}}}}
}
"""Documents a raw rule body as what it must be, a JSON object (its shape is the service's)."""

In = TypeVar("In", bound=BaseModel)
Out = TypeVar("Out")


class DryRunBody(BaseModel):
    """`POST /rules/dry-run`: a draft rule and the instant its history starts."""

    rule: Annotated[Any, Field(json_schema_extra={"type": "object"})]
    since: datetime


def _rule_object(value: Any, path: str = "rule") -> dict[str, Any]:
    """The raw rule, which must at least be a JSON object that can be stored to be checked."""
    problem = input_problem(value)
    if problem is not None:  # a NUL, a lone surrogate, too deep: nothing can carry it on
        raise ServiceError(
            422, "VALIDATION_ERROR", "the request body is not valid", {path: problem}
        )
    if not isinstance(value, dict):
        error = {"path": path, "message": "a rule is a JSON object"}
        raise ServiceError(422, "INVALID_RULE", "the rule is not valid (1 error)", [error])
    return value


def _instant(value: datetime, name: str) -> datetime:
    if value.tzinfo is None:
        raise ServiceError(
            422, "VALIDATION_ERROR", f"{name} needs a timezone", {name: "no timezone"}
        )
    return value


@router.get("/rules")
async def list_rules(
    deps: DepsDep, request: Request, who: StaffUser, limit: PageLimit = 50, cursor: Cursor = None
) -> contract.RulePage:
    """Rules that are not archived, a page at a time."""
    page = request_of(contract.ListRulesIn, limit=limit, cursor=cursor)
    return await ask_as(deps, request, who, contract.LIST, page)


@router.post("/rules", status_code=status.HTTP_201_CREATED, openapi_extra=AN_OBJECT)
async def create_rule(
    deps: DepsDep, request: Request, who: AdminUser, body: RuleJson
) -> contract.RuleOut:
    """Version 1 of a new rule; 422 INVALID_RULE lists every error with its path."""
    made = request_of(contract.CreateRuleIn, definition=_rule_object(body))
    return await ask_as(deps, request, who, contract.CREATE, made)


@router.post("/rules/dry-run")
async def dry_run(
    deps: DepsDep, request: Request, who: AdminUser, body: DryRunBody
) -> contract.DryRunOut:
    """What the draft rule would have fired on over the events stored since `since` (at most
    5,000 of them; `truncated` says when there were more). Writes nothing."""
    draft = request_of(
        contract.DryRunIn, rule=_rule_object(body.rule), since=_instant(body.since, "since")
    )
    return await ask_as(deps, request, who, contract.DRY_RUN, draft)


# before /rules/{id}, which would take "templates" for a rule's id
@router.get("/rules/templates")
async def list_templates(deps: DepsDep, request: Request, who: StaffUser) -> contract.TemplateList:
    """The rules that ship disabled, and whether each is enabled yet."""
    return await ask_as(deps, request, who, contract.TEMPLATES, contract.NoArgs())


@router.post("/rules/templates/{key}", openapi_extra=AN_OBJECT)
async def enable_template(
    deps: DepsDep,
    request: Request,
    who: AdminUser,
    key: Annotated[str, Path(pattern=TEMPLATE_KEY, description="a template's key")],
    body: Annotated[
        Any, Body(description="keys replacing the template's, e.g. its actions")
    ] = None,
) -> contract.RuleOut:
    """Enable a template: its rule (`template-<key>`) is made if need be, with the keys given
    replacing the template's, and enabled."""
    changes = None if body is None else _rule_object(body)
    enable = request_of(contract.TemplateKeyIn, key=key, changes=changes)
    return await ask_as(deps, request, who, contract.ENABLE_TEMPLATE, enable)


@router.get("/rules/{id}")
async def get_rule(
    deps: DepsDep, request: Request, who: StaffUser, id: RuleIdPath
) -> contract.RuleOut:
    return await ask_as(deps, request, who, contract.GET, request_of(contract.RuleIdIn, id=id))


@router.patch("/rules/{id}", openapi_extra=AN_OBJECT)
async def update_rule(
    deps: DepsDep, request: Request, who: AdminUser, id: RuleIdPath, body: RuleJson
) -> contract.RuleOut:
    """The keys given replace the rule's; a changed definition is a new version (the jobs of
    the old one keep naming it), a changed `enabled` enables or disables it."""
    changes = request_of(contract.UpdateRuleIn, id=id, changes=_rule_object(body))
    return await ask_as(deps, request, who, contract.UPDATE, changes)


@router.delete("/rules/{id}")
async def delete_rule(
    deps: DepsDep, request: Request, who: AdminUser, id: RuleIdPath
) -> contract.RuleOut:
    """Disable and archive the rule: it no longer fires or lists; its history stays."""
    return await ask_as(deps, request, who, contract.ARCHIVE, request_of(contract.RuleIdIn, id=id))


@router.get("/rules/{id}/versions")
async def rule_versions(
    deps: DepsDep,
    request: Request,
    who: StaffUser,
    id: RuleIdPath,
    limit: PageLimit = 50,
    cursor: Cursor = None,
) -> contract.RuleVersionPage:
    page = request_of(contract.VersionsIn, id=id, limit=limit, cursor=cursor)
    return await ask_as(deps, request, who, contract.VERSIONS, page)


@router.get("/rules/{id}/diff")
async def diff_rule(
    deps: DepsDep,
    request: Request,
    who: StaffUser,
    id: RuleIdPath,
    a: Annotated[int, Query(ge=1, le=2**31 - 1, description="a version")],
    b: Annotated[int, Query(ge=1, le=2**31 - 1, description="another version")],
    since: Annotated[datetime, Query(description="evaluate the events stored since then")],
) -> contract.DiffOut:
    """What each of two versions would have fired on over the same history, and where they
    differ."""
    query = request_of(contract.DiffIn, id=id, a=a, b=b, since=_instant(since, "since"))
    return await ask_as(deps, request, who, contract.DIFF, query)
