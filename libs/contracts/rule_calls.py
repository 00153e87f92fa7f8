"""The rules service's RPC requests and answers beyond a rule itself (re-exported by
`libs.contracts.rules`): rule ids, pages, versions, dry runs, diffs and templates.

A definition travels as raw JSON (`definition: dict`), not as a `RuleDefinition`: the service
runs `validate_rule` over it, so a shape error is a 422 `INVALID_RULE` naming its path, like
every other error of a rule, and never the generic `VALIDATION_ERROR`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Final
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from libs.contracts.rule_definitions import ActionIn, RuleBody, RuleOut

RULE_ID: Final = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$"
"""A rule id: generated ones are UUID hex; `rules apply` files may name their own."""
TEMPLATE_KEY: Final = r"^[a-z0-9][a-z0-9_-]{0,63}$"
MAX_PAGE: Final = 200
MAX_DRY_RUN_EVENTS: Final = 5_000
"""Events one dry run (or diff) evaluates at most; `truncated` says when more were there."""

RuleId = Annotated[str, StringConstraints(pattern=RULE_ID)]
RawRule = Annotated[dict[str, Any], Field(description="a rule definition, checked as a whole")]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RuleIdIn(_In):
    id: RuleId


class ListRulesIn(_In):
    limit: int = Field(default=50, ge=1, le=MAX_PAGE)
    cursor: Annotated[str, Field(max_length=500)] | None = None


class CreateRuleIn(_In):
    definition: RawRule
    id: RuleId | None = None
    """None: a new id is made; `rules apply` names its own, so a file is applied idempotently."""


class UpdateRuleIn(_In):
    """PATCH: `changes` replace the top-level keys they name; the result is checked whole."""

    id: RuleId
    changes: RawRule


class EnableRuleIn(_In):
    id: RuleId
    enabled: bool


class VersionsIn(_In):
    id: RuleId
    limit: int = Field(default=50, ge=1, le=MAX_PAGE)
    cursor: Annotated[str, Field(max_length=500)] | None = None


class DryRunIn(_In):
    rule: RawRule
    since: datetime
    """Evaluate the events recorded at or after this instant."""


class DiffIn(_In):
    id: RuleId
    a: int = Field(ge=1)
    b: int = Field(ge=1)
    since: datetime


class TemplateKeyIn(_In):
    key: Annotated[str, StringConstraints(pattern=TEMPLATE_KEY)]
    changes: RawRule | None = None
    """Top-level keys replacing the template's (as a PATCH would), checked whole."""


class NoArgs(_In):
    pass


class RulePage(BaseModel):
    items: list[RuleOut]
    next_cursor: str | None = None


class RuleVersionOut(BaseModel):
    """One definition version of a rule."""

    rule_id: str
    version: int = Field(ge=1)
    definition: RuleBody
    created_at: datetime
    created_by: str


class RuleVersionPage(BaseModel):
    items: list[RuleVersionOut]
    next_cursor: str | None = None


class DryRunMatch(BaseModel):
    """An event the rule would have fired on: the ticket it concerns and the actions."""

    event_id: UUID
    type: str
    recorded_at: datetime
    ticket: str | None
    actions: list[ActionIn]


class DryRunOut(BaseModel):
    evaluated: int = Field(ge=0)
    """Events of the rule's trigger since `since` that were evaluated."""
    matches: list[DryRunMatch]
    truncated: bool = False
    """More events (or matches) than one answer carries: narrow `since`."""


class DiffOut(BaseModel):
    """Two versions' decisions over the same history: what only one of them fired on."""

    a: int
    b: int
    evaluated: int = Field(ge=0)
    both: int = Field(ge=0)
    """Events both versions fired on."""
    only_a: list[DryRunMatch]
    only_b: list[DryRunMatch]
    truncated: bool = False


class TemplateOut(BaseModel):
    """A rule that ships disabled: `POST /rules/templates/{key}` enables it."""

    key: str
    rule_id: str
    description: str
    definition: RuleBody
    enabled: bool


class TemplateList(BaseModel):
    items: list[TemplateOut]
