"""webhook `{webhook_id, body?|message?}`: POST a JSON body to a registered `webhook` endpoint.

The body is the rendered `body` template (every string in it rendered), or `{"text": message}`,
or else a summary of the job; it is sent as `actions/outgoing.py` says (signed, keyed by the
job, through the outbound guard, retried on a 5xx or a timeout)."""

from __future__ import annotations

from typing import Any

from libs.contracts.rules import OutgoingParams
from services.executor.actions.base import Action, ActionContext
from services.executor.actions.outgoing import post


def payload(params: OutgoingParams, context: ActionContext) -> Any:
    if params.body is not None:
        return params.body
    if params.message is not None:
        return {"text": params.message}
    values = context.values
    return {
        "job_id": context.job_id,
        "rule": values.get("rule"),
        "ticket": values.get("ticket"),
        "trigger": values.get("trigger"),
    }


async def run(params: OutgoingParams, context: ActionContext) -> dict[str, Any]:
    return await post(params.webhook_id, payload(params, context), context, kind="webhook")


ACTION = Action(params=OutgoingParams, run=run)
