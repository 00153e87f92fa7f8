"""notify `{to: requester|assignee|user:<id>|role:<role>, message}`: an in-app notification for
each recipient (services/executor/notifications/).

`requester` and `assignee` are the ticket's as the job was fired; `user:<id>` that user;
`role:<role>` its active holders. Only known, active people are notified; when nobody is left
the step fails for good (no retry finds a recipient the rule does not name). The ids derive from
the job step and the user, so a retried step notifies nobody twice."""

from __future__ import annotations

from typing import Any

from libs.contracts.rules import NotifyParams
from services.executor.actions.base import Action, ActionContext, StepFailed
from services.executor.handlers import caused_by
from services.executor.notifications.writes import Notice, Writer
from services.executor.people import active, approvers
from services.executor.queries import Db


async def recipients(db: Db, to: str, context: ActionContext) -> list[str]:
    """The active people `to` names; StepFailed (not retryable) when there are none."""
    kind, _, name = to.partition(":")
    if kind in ("requester", "assignee"):
        ticket = context.values.get("ticket") or {}
        user = ticket.get(f"{kind}_id") if isinstance(ticket, dict) else None
        if not isinstance(user, str) or not user:
            where = "its ticket" if context.ticket else "the job, which has no ticket,"
            raise StepFailed(f"notify {to}: {where} has no {kind}", retryable=False)
        found = await active(db, [user])
        missing = f"the {kind}, {user}, is not an active user"
    elif kind == "user":
        found = await active(db, [name])
        missing = f"{name} is not an active user"
    else:  # role: NotifyParams admits nothing else
        found = await approvers(db, users=[], roles=[name], exclude=None)
        missing = f"role {name!r} has no active member"
    if not found:
        raise StepFailed(f"notify {to}: nobody to notify ({missing})", retryable=False)
    return found


async def run(params: NotifyParams, context: ActionContext) -> dict[str, Any]:
    deps = context.deps
    notice = Notice(
        kind="notify",
        message=params.message,
        ticket=context.ticket,
        job_id=context.job_id,
        step=context.step,
    )
    async with deps.store.transaction() as conn:
        users = await recipients(conn, params.to, context)
        made = await Writer(deps.store, deps.settings).notify(
            conn,
            users=users,
            notice=notice,
            cause=("notify", context.job_id, context.step),
            metadata=caused_by(context.queued),
        )
    return {"notified": users, "notifications": made}


ACTION = Action(params=NotifyParams, run=run)
