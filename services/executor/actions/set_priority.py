"""set_priority `{priority}`: change the job's ticket's priority."""

from __future__ import annotations

from typing import Any

from libs.contracts import tickets as contract
from libs.contracts.rules import SetPriorityParams
from services.executor.actions.base import Action, ActionContext
from services.executor.actions.tickets import origin, send


async def run(params: SetPriorityParams, context: ActionContext) -> dict[str, Any]:
    body = contract.SetPriorityIn(
        key=context.need_ticket(), priority=params.priority, **origin(context)
    )
    return await send(context, contract.SET_PRIORITY, body)


ACTION = Action(params=SetPriorityParams, run=run)
