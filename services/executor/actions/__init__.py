"""The action registry: one module per action type, each an `Action` (its params model from
`libs.contracts.rules.ACTION_PARAMS` and `async def run(params, context) -> result`).

`prepare` renders a step's template params over the job's context and validates them with the
very model the rule was validated with; `ACTIONS` names every action that runs today (the others
fail their step with a clear, non-retryable error until their module exists)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from pydantic import ValidationError

from libs.contracts.rules import ACTION_PARAMS, MAX_TEMPLATE, ActionParams
from libs.templates import TemplateFailed, render, render_json
from services.executor.actions import (
    add_tag,
    announce,
    assign,
    discord,
    mail,
    mattermost,
    notify,
    set_priority,
    set_status,
    slack,
    teams,
    webhook,
)
from services.executor.actions.base import Action, ActionContext, StepFailed

__all__ = ["ACTIONS", "Action", "ActionContext", "StepFailed", "prepare"]

ACTIONS: Final[dict[str, Action[Any]]] = {
    "add_tag": add_tag.ACTION,
    "set_status": set_status.ACTION,
    "set_priority": set_priority.ACTION,
    "assign": assign.ACTION,
    "webhook": webhook.ACTION,
    "slack": slack.ACTION,
    "discord": discord.ACTION,
    "teams": teams.ACTION,
    "mattermost": mattermost.ACTION,
    "email": mail.ACTION,
    "notify": notify.ACTION,
    announce.NAME: announce.ACTION,
}


INTERNAL: Final = frozenset({announce.NAME})
"""Actions the executor queues itself, which no rule may name (not in the contract's types)."""


def prepare(action_type: str, raw: Mapping[str, Any], values: Mapping[str, Any]) -> ActionParams:
    """The step's params, rendered and validated; StepFailed (not retryable) when they cannot
    be: no retry mends a template that fails or params that do not fit."""
    action = ACTIONS.get(action_type)
    internal = action_type in INTERNAL
    if action is None or (ACTION_PARAMS.get(action_type) is None and not internal):
        raise StepFailed(f"the {action_type!r} action cannot run yet", retryable=False)
    params = dict(raw)
    try:
        for name in action.params.templates:
            if name in action.renders_itself:
                continue
            value = params.get(name)
            if isinstance(value, str):
                params[name] = render(value, values)
            elif value is not None:
                params[name] = render_json(value, values)
    except TemplateFailed as exc:
        raise StepFailed(
            f"a template of {action_type} failed: {exc.message}", retryable=False
        ) from None
    # the rendered text may be longer than a template may (ticket data fills it): validated as
    # the rule was, with each text cut to the template bound for the check only; each action
    # cuts its text to what its service takes
    probe = {k: v[:MAX_TEMPLATE] if isinstance(v, str) else v for k, v in params.items()}
    try:
        validated: ActionParams = action.params.model_validate(probe)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'params'}: {e['msg']}" for e in exc.errors()
        )
        raise StepFailed(
            f"the params of {action_type} are not valid: {problems}", retryable=False
        ) from None
    longer = {k: v for k, v in params.items() if isinstance(v, str) and len(v) > MAX_TEMPLATE}
    return validated.model_copy(update=longer) if longer else validated
