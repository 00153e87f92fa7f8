"""assign `{user_id}` | `{round_robin: [user_id]}` | `{on_call: schedule_id}`.

Round-robin takes the next turn of its group from the store: one `roundrobin.turn_taken` on
`roundrobin-<sha256 of the list>`, appended at whatever version the stream is at, so replicas
racing get consecutive turns, never the same one; its id derives from the job step, so a retry
of the step takes the turn it took before. `on_call` fails until schedules exist."""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import Any, Final

from libs.contracts import tickets as contract
from libs.contracts.rules import AssignParams
from libs.events.catalog.executor import RoundRobinTurnTaken
from libs.events.envelope import Metadata
from libs.events.store import ANY
from services.executor.actions.base import Action, ActionContext, StepFailed
from services.executor.actions.tickets import EXECUTOR, origin, send

_TURN_IDS: Final = uuid.UUID("9a4d7c1e-3b5f-4e8a-b2c6-0f1e2d3c4b5a")


def group_stream(members: list[str]) -> str:
    digest = hashlib.sha256(json.dumps(members, separators=(",", ":")).encode()).hexdigest()
    return f"roundrobin-{digest}"


async def take_turn(members: list[str], context: ActionContext) -> str:
    """The member whose turn this step is."""
    turn = RoundRobinTurnTaken(job_id=context.job_id, step=context.step, members=members)
    meta = Metadata(
        actor=EXECUTOR,
        correlation_id=context.queued.metadata.correlation_id,
        causation_id=context.queued.id,
        causation_depth=context.queued.metadata.causation_depth + 1,
        service="executor",
    )
    [taken] = await context.deps.store.append(
        group_stream(members),
        [turn],
        expected_version=ANY,
        metadata=meta,
        ids=[uuid.uuid5(_TURN_IDS, context.idempotency_key)],
    )
    return members[(taken.version - 1) % len(members)]


async def run(params: AssignParams, context: ActionContext) -> dict[str, Any]:
    key = context.need_ticket()
    if params.on_call is not None:
        raise StepFailed(
            "assign to on-call cannot run: there are no on-call schedules yet", retryable=False
        )
    if params.round_robin is not None:
        assignee = await take_turn(list(params.round_robin), context)
    elif params.user_id is not None:
        assignee = params.user_id
    else:  # AssignParams refuses this; say so if it ever changes
        raise StepFailed("assign needs user_id, round_robin or on_call", retryable=False)
    body = contract.AssignTicketIn(key=key, assignee_id=assignee, **origin(context))
    return await send(context, contract.ASSIGN, body)


ACTION = Action(params=AssignParams, run=run)
