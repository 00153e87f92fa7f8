"""add_tag `{tag}`: tag the job's ticket (a repeat of the step appends nothing)."""

from __future__ import annotations

from typing import Any

from libs.contracts import tickets as contract
from libs.contracts.rules import AddTagParams
from services.executor.actions.base import Action, ActionContext
from services.executor.actions.tickets import origin, send


async def run(params: AddTagParams, context: ActionContext) -> dict[str, Any]:
    body = contract.TagTicketIn(key=context.need_ticket(), tag=params.tag, **origin(context))
    return await send(context, contract.ADD_TAG, body)


ACTION = Action(params=AddTagParams, run=run)
