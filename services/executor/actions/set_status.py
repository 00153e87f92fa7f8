"""set_status `{status}`: change the job's ticket's status; a locked ticket refuses it
(PENDING_APPROVAL), and the step records why."""

from __future__ import annotations

from typing import Any

from libs.contracts import tickets as contract
from libs.contracts.rules import SetStatusParams
from services.executor.actions.base import Action, ActionContext
from services.executor.actions.tickets import origin, send


async def run(params: SetStatusParams, context: ActionContext) -> dict[str, Any]:
    body = contract.ChangeStatusIn(
        key=context.need_ticket(), status=params.status, **origin(context)
    )
    return await send(context, contract.CHANGE_STATUS, body)


ACTION = Action(params=SetStatusParams, run=run)
