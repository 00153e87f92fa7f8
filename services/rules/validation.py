"""Validate a rule definition, returning every error with its path, or the typed definition.

Two passes over the raw JSON: the contract's shape (types, lengths, counts; every error at once,
as pydantic reports them), then what only the trigger and action types decide, run on each part
that parsed on its own so one bad part hides no error of another: trigger options, condition
paths that cannot exist for the trigger, each action's params model, and each text template.
Paths read like `trigger.event`, `conditions.all[1].field`, `actions[0].params.tag`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Final, get_args

from pydantic import ValidationError

from libs.contracts.rules import (
    ACTION_PARAMS,
    ActionType,
    RuleDefinition,
    RuleErrorDetail,
    TriggerIn,
    TriggerName,
)
from libs.events.conditions import AllOf, AnyOf, Condition, Leaf, NotOf, parse_condition
from libs.rules.gate import lockable
from libs.rules.triggers import ANY_TEMPLATE_ROOTS, TRIGGERS, Trigger
from libs.templates import check
from libs.templates import texts as template_texts
from services.rules.refusals import InvalidRule

TICKET_ACTIONS: Final = frozenset({"assign", "set_status", "set_priority", "add_tag"})
_OPTIONS: Final = ("from", "to", "kind", "after")
_TAGS: Final = ("leaf", "all", "any", "not")


def validate_rule(raw: object) -> RuleDefinition:
    """The definition, typed; raises InvalidRule listing every error with its path."""
    errors: list[RuleErrorDetail] = []
    definition: RuleDefinition | None = None
    try:
        definition = RuleDefinition.model_validate(raw)
    except ValidationError as exc:
        errors.extend(pydantic_errors(exc))
    body: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
    trigger = _trigger(body.get("trigger"), errors)
    if trigger is not None and trigger.automated and body.get("on_automation") is not True:
        message = f"{trigger.name} events are written by automation: set on_automation to true"
        errors.append(RuleErrorDetail(path="on_automation", message=message))
    if trigger is not None and body.get("approval") is not None and not lockable(trigger):
        message = (
            f"a gated rule must trigger on an event of the ticket itself, so that the ticket is "
            f"locked in that event's own append; {trigger.name} events are not"
        )
        errors.append(RuleErrorDetail(path="approval", message=message))
    conditions = _quietly_condition(body.get("conditions"))
    if trigger is not None and conditions is not None:
        errors.extend(condition_path_errors(conditions, trigger))
    actions = body.get("actions")
    if isinstance(actions, list):
        for index, action in enumerate(actions):
            errors.extend(_action_errors(index, action, trigger))
    if errors or definition is None:
        raise InvalidRule(errors)
    return definition


def pydantic_errors(exc: ValidationError, prefix: str = "") -> list[RuleErrorDetail]:
    """Pydantic's errors as `{path, message}`, with our paths and plainer messages."""
    found = []
    for error in exc.errors(include_url=False):
        loc = tuple(error["loc"])
        tail = _path(loc, value_error=error["type"] == "value_error")
        path = f"{prefix}{'.' if prefix and tail and tail[0] != '[' else ''}{tail}"
        found.append(RuleErrorDetail(path=path or "rule", message=_message(path, error)))
    return found


def _message(path: str, error: Any) -> str:
    kind, given = error["type"], _short(error.get("input"))
    if path == "trigger.event" and kind == "literal_error":
        return f"unknown trigger {given}; one of: {', '.join(get_args(TriggerName))}"
    if path.startswith("actions[") and path.endswith("].type") and kind == "literal_error":
        return f"unknown action type {given}; one of: {', '.join(get_args(ActionType))}"
    if kind == "extra_forbidden":
        return "is not a known key here"
    message = str(error["msg"])
    return message.removeprefix("Value error, ")


def _short(value: object) -> str:
    # an error echoes what it refused; a megabyte of it is no help to anyone
    text = repr(value)
    return text if len(text) <= 60 else f"{text[:57]}..."


def _path(loc: Sequence[int | str], *, value_error: bool) -> str:
    parts = list(loc)
    if parts and parts[0] == "conditions":
        parts = ["conditions", *_without_tags(parts[1:], value_error=value_error)]
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _without_tags(parts: list[int | str], *, value_error: bool) -> list[int | str]:
    # A condition's loc names the union tag before each node: ("all", "all", 1, "leaf", "field").
    out: list[int | str] = []
    while parts:
        tag = parts.pop(0)
        if tag not in _TAGS:
            return [*out, tag, *parts]
        if tag == "leaf":
            # a leaf's own check (its value against its op) names no field: it is the value
            return [*out, *(parts or (["value"] if value_error else []))]
        if parts and parts[0] == tag:
            out.append(parts.pop(0))
        if parts and isinstance(parts[0], int):
            out.append(parts.pop(0))
    return out


def _trigger(raw: object, errors: list[RuleErrorDetail]) -> Trigger | None:
    try:
        given = TriggerIn.model_validate(raw)
    except ValidationError:
        return None  # the shape pass has reported it
    trigger = TRIGGERS[given.event]
    for option in _OPTIONS:
        value = getattr(given, "from_" if option == "from" else option)
        if value is not None and option not in trigger.options:
            allowed = ", ".join(sorted(trigger.options)) or "none"
            message = f"{option!r} is not an option of {trigger.name} (its options: {allowed})"
            errors.append(RuleErrorDetail(path=f"trigger.{option}", message=message))
        if value is None and option in trigger.required:
            message = f"{trigger.name} needs {option!r}"
            errors.append(RuleErrorDetail(path=f"trigger.{option}", message=message))
    return trigger


def _quietly_condition(raw: object) -> Condition | None:
    if raw is None:
        return None
    try:
        return parse_condition(raw)
    except ValueError:
        return None  # the shape pass has reported it


def leaves_with_paths(condition: Condition, path: str = "conditions") -> Iterator[tuple[str, Leaf]]:
    """Every leaf of a condition with its path in the rule document."""
    if isinstance(condition, AllOf | AnyOf):
        key = "all" if isinstance(condition, AllOf) else "any"
        branches = condition.all if isinstance(condition, AllOf) else condition.any
        for index, branch in enumerate(branches):
            yield from leaves_with_paths(branch, f"{path}.{key}[{index}]")
    elif isinstance(condition, NotOf):
        yield from leaves_with_paths(condition.not_, f"{path}.not")
    else:
        yield path, condition


def condition_path_errors(condition: Condition, trigger: Trigger) -> list[RuleErrorDetail]:
    """An error for each leaf reading a path that cannot exist for the trigger."""
    found = []
    for path, leaf in leaves_with_paths(condition):
        problem = trigger.path_problem(leaf.field)
        if problem is not None:
            found.append(RuleErrorDetail(path=f"{path}.field", message=problem))
    return found


def _action_errors(index: int, raw: object, trigger: Trigger | None) -> list[RuleErrorDetail]:
    if not isinstance(raw, Mapping):
        return []
    kind, params = raw.get("type"), raw.get("params", {})
    model = ACTION_PARAMS.get(kind) if isinstance(kind, str) else None
    if model is None or not isinstance(params, Mapping):
        return []  # the shape pass has reported it
    where = f"actions[{index}]"
    found = []
    if trigger is not None and not trigger.on_ticket and kind in TICKET_ACTIONS:
        message = f"{kind!r} acts on a ticket, and {trigger.name} is not about a ticket"
        found.append(RuleErrorDetail(path=f"{where}.type", message=message))
    try:
        parsed = model.model_validate(params)
    except ValidationError as exc:
        return [*found, *pydantic_errors(exc, prefix=f"{where}.params")]
    roots = trigger.template_roots() if trigger is not None else ANY_TEMPLATE_ROOTS
    for name in model.templates:
        for path, text in template_texts(getattr(parsed, name), f"{where}.params.{name}"):
            problem = check(text, roots)
            if problem is not None:
                found.append(RuleErrorDetail(path=path, message=problem))
    return found
