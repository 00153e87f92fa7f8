"""The rules contract: every RPC method the rules service answers, with its request and answer
models, and the shapes of a rule, an action's params and a job.

The rules service registers a handler per `Method` (`serve`); the gateway (and `opsledger rules`)
call them with `ask`. The models live in `rule_definitions` (a rule, action params, a job, with
the bounds on every input) and `rule_calls` (ids, pages, versions, dry runs, diffs, templates);
they are re-exported here, so `contract.RuleOut` names the one definition. Names and shapes are
api.md's ("Automation").
"""

from __future__ import annotations

from libs.contracts.rule_calls import (
    MAX_DRY_RUN_EVENTS,
    MAX_PAGE,
    RULE_ID,
    TEMPLATE_KEY,
    CreateRuleIn,
    DiffIn,
    DiffOut,
    DryRunIn,
    DryRunMatch,
    DryRunOut,
    EnableRuleIn,
    ListRulesIn,
    NoArgs,
    RawRule,
    RuleId,
    RuleIdIn,
    RulePage,
    RuleVersionOut,
    RuleVersionPage,
    TemplateKeyIn,
    TemplateList,
    TemplateOut,
    UpdateRuleIn,
    VersionsIn,
)
from libs.contracts.rule_definitions import (
    ACTION_PARAMS,
    MAX_ACTIONS,
    MAX_ANNOUNCE,
    MAX_APPROVERS,
    MAX_ID,
    MAX_NAME,
    MAX_PARAMS_BYTES,
    MAX_ROUND_ROBIN,
    MAX_TEMPLATE,
    ActionIn,
    ActionParams,
    ActionType,
    AddTagParams,
    ApprovalIn,
    Approvers,
    AssignParams,
    Duration,
    EmailParams,
    EscalateParams,
    Id,
    JobOut,
    JobState,
    JsonParams,
    Name,
    NotifyParams,
    OutgoingParams,
    Recipient,
    RuleBody,
    RuleDefinition,
    RuleErrorDetail,
    RuleOut,
    RunRunbookParams,
    SetPriorityParams,
    SetStatusParams,
    SlaKind,
    Template,
    TriggerIn,
    TriggerName,
    json_size,
)
from libs.events.contract import Method

__all__ = [
    "ACTION_PARAMS", "MAX_ACTIONS", "MAX_ANNOUNCE", "MAX_APPROVERS", "MAX_DRY_RUN_EVENTS",
    "MAX_ID", "MAX_NAME", "MAX_PAGE", "MAX_PARAMS_BYTES", "MAX_ROUND_ROBIN", "MAX_TEMPLATE",
    "RULE_ID", "TEMPLATE_KEY", "ActionIn", "ActionParams", "ActionType", "AddTagParams",
    "ApprovalIn", "Approvers", "AssignParams", "CreateRuleIn", "DiffIn", "DiffOut", "DryRunIn",
    "DryRunMatch", "DryRunOut", "Duration", "EmailParams", "EnableRuleIn", "EscalateParams", "Id",
    "JobOut", "JobState", "JsonParams", "ListRulesIn", "Name", "NoArgs", "NotifyParams",
    "OutgoingParams", "RawRule", "Recipient", "RuleBody", "RuleDefinition", "RuleErrorDetail",
    "RuleId", "RuleIdIn", "RuleOut", "RulePage", "RuleVersionOut", "RuleVersionPage",
    "RunRunbookParams", "SetPriorityParams", "SetStatusParams", "SlaKind", "Template",
    "TemplateKeyIn", "TemplateList", "TemplateOut", "TriggerIn", "TriggerName", "UpdateRuleIn",
    "VersionsIn", "json_size",
]  # fmt: skip

# methods: `ns.rpc.rules.<name>`; writes are the admins', reads the staff's (the service checks)

CREATE: Method[CreateRuleIn, RuleOut] = Method("rules", "rules.create", CreateRuleIn, RuleOut)
GET: Method[RuleIdIn, RuleOut] = Method("rules", "rules.get", RuleIdIn, RuleOut)
LIST: Method[ListRulesIn, RulePage] = Method("rules", "rules.list", ListRulesIn, RulePage)
UPDATE: Method[UpdateRuleIn, RuleOut] = Method("rules", "rules.update", UpdateRuleIn, RuleOut)
"""PATCH: a new version when the definition changed, an enable/disable when `enabled` did."""
ENABLE: Method[EnableRuleIn, RuleOut] = Method("rules", "rules.enable", EnableRuleIn, RuleOut)
ARCHIVE: Method[RuleIdIn, RuleOut] = Method("rules", "rules.archive", RuleIdIn, RuleOut)
"""DELETE: disabled and archived; the rule leaves lists, its stream stays as history."""
VERSIONS: Method[VersionsIn, RuleVersionPage] = Method(
    "rules", "rules.versions", VersionsIn, RuleVersionPage
)
DRY_RUN: Method[DryRunIn, DryRunOut] = Method("rules", "rules.dry_run", DryRunIn, DryRunOut)
"""A draft evaluated over the stored events since an instant; writes nothing."""
DIFF: Method[DiffIn, DiffOut] = Method("rules", "rules.diff", DiffIn, DiffOut)
TEMPLATES: Method[NoArgs, TemplateList] = Method("rules", "rules.templates", NoArgs, TemplateList)
ENABLE_TEMPLATE: Method[TemplateKeyIn, RuleOut] = Method(
    "rules", "rules.templates.enable", TemplateKeyIn, RuleOut
)
"""Enable a template's rule (created, disabled, on the service's first start)."""
