"""Ticket commands from automation: sent to the tickets service over the bus as the executor,
with the step's idempotency key and the job as their cause; its refusals become step failures
(the lock's PENDING_APPROVAL may lift, so it is retried within the job's attempts; a refusal
no retry can mend is not)."""

from __future__ import annotations

from typing import Any, Final, TypeVar

from libs.contracts import tickets as contract
from libs.contracts.ticket_requests import AutomationIn, Cause
from libs.events.contract import Method, ask
from libs.events.envelope import Actor
from libs.events.errors import ServiceError
from services.executor.actions.base import ActionContext, StepFailed

EXECUTOR: Final = Actor.service("executor")
RETRYABLE_CODES: Final = frozenset({"PENDING_APPROVAL", "CONCURRENT_CHANGE"})

In = TypeVar("In", bound=AutomationIn)


def origin(ctx: ActionContext) -> dict[str, Any]:
    """The fields every command from a job step carries."""
    cause = Cause(event_id=ctx.queued.id, depth=ctx.queued.metadata.causation_depth)
    return {"idempotency_key": ctx.idempotency_key, "cause": cause}


async def send(
    ctx: ActionContext, method: Method[In, contract.TicketOut], body: In
) -> dict[str, Any]:
    """Send the command; the ticket's key, status, priority, assignee and tags as the result."""
    try:
        ticket = await ask(
            ctx.deps.rpc,
            method,
            body,
            actor=EXECUTOR,
            correlation_id=str(ctx.queued.metadata.correlation_id),
            timeout=ctx.timeout_s,
        )
    except ServiceError as exc:
        retryable = exc.status >= 500 or exc.code in RETRYABLE_CODES
        raise StepFailed(f"{exc.code}: {exc.message}", retryable=retryable) from None
    return {
        "ticket": ticket.key,
        "status": ticket.status,
        "priority": ticket.priority,
        "assignee_id": ticket.assignee_id,
        "tags": list(ticket.tags),
    }
