"""A queued job runs to `succeeded`, every step recorded once, its ticket effects applied once;
a locked ticket refuses set_status and the job says why; shadow jobs act on nothing."""

from __future__ import annotations

import asyncio

from libs.events.catalog.tickets import TicketApprovalRequested
from libs.events.store import ANY
from tests.executor.stack import Stack
from tests.tickets.support import APPROVALS, OPERATOR

ACTIONS = [
    {"type": "add_tag", "params": {"tag": "prod"}},
    {"type": "set_priority", "params": {"priority": "urgent"}},
    {"type": "assign", "params": {"user_id": OPERATOR.id}},
    {"type": "set_status", "params": {"status": "in_progress"}},
]


async def test_a_job_runs_its_steps_in_order_and_succeeds(stack: Stack) -> None:
    key = await stack.ticket()
    job_id = await stack.queue(ACTIONS, ticket=key)
    job = await stack.settled(job_id)
    assert job["state"] == "succeeded" and job["attempts"] == 1 and job["last_error"] is None
    assert [h["type"] for h in job["history"]] == [
        "job.queued", "job.started", *["job.step_succeeded"] * 4, "job.succeeded",
    ]  # fmt: skip
    assert [h["step"] for h in job["history"][2:6]] == [0, 1, 2, 3]
    assert all(h["actor"] == {"kind": "service", "id": "executor"} for h in job["history"][1:])
    ticket = await stack.desk.call("tickets.get", {"key": key}, by=OPERATOR)
    assert (ticket["tags"], ticket["priority"], ticket["assignee_id"], ticket["status"]) == (
        ["prod"], "urgent", OPERATOR.id, "in_progress",
    )  # fmt: skip
    assert await stack.ticket_events(key) == [
        "ticket.created", "ticket.tagged", "ticket.priority_changed", "ticket.assigned",
        "ticket.status_changed",
    ]  # fmt: skip


async def test_ticket_events_name_the_executor_and_the_job_as_their_cause(stack: Stack) -> None:
    key = await stack.ticket()
    job_id = await stack.queue(ACTIONS[:1], ticket=key)
    await stack.settled(job_id)
    [queued] = await stack.deps.store.read_stream(f"job-{job_id}", to_version=1)
    [tagged] = await stack.deps.store.read_stream(f"ticket-{key}", from_version=2)
    assert tagged.metadata.actor.id == "executor" and tagged.metadata.causation_id == queued.id
    assert tagged.metadata.causation_depth == queued.metadata.causation_depth + 1
    assert tagged.metadata.correlation_id == queued.metadata.correlation_id


async def test_set_status_on_a_locked_ticket_is_refused_and_the_job_says_why(
    stack: Stack,
) -> None:
    key = await stack.ticket()
    lock = TicketApprovalRequested(approval_id="apr-1", action="resolve")
    await stack.deps.store.append(f"ticket-{key}", [lock], expected_version=ANY, metadata=APPROVALS)
    job_id = await stack.queue(
        [{"type": "set_status", "params": {"status": "resolved"}}], ticket=key
    )
    job = await stack.settled(job_id)
    assert job["state"] == "dead_lettered" and job["attempts"] == 3
    assert job["last_error"].startswith("PENDING_APPROVAL")
    ticket = await stack.desk.call("tickets.get", {"key": key}, by=OPERATOR)
    assert ticket["status"] == "open"


async def test_a_refusal_no_retry_can_mend_dead_letters_at_once(stack: Stack) -> None:
    key = await stack.ticket()
    job_id = await stack.queue([{"type": "set_status", "params": {"status": "open"}}], ticket=key)
    job = await stack.settled(job_id)
    assert job["state"] == "dead_lettered" and job["attempts"] == 1
    assert job["last_error"].startswith("INVALID_TRANSITION")


async def test_assign_to_on_call_fails_clearly(stack: Stack) -> None:
    key = await stack.ticket()
    job_id = await stack.queue([{"type": "assign", "params": {"on_call": "sch-1"}}], ticket=key)
    job = await stack.settled(job_id)
    assert job["state"] == "dead_lettered" and "no on-call schedules yet" in job["last_error"]


async def test_round_robin_takes_turns_across_jobs(stack: Stack) -> None:
    from tests.tickets.support import ADMIN

    group = [OPERATOR.id, ADMIN.id]
    keys = [await stack.ticket() for _ in range(4)]
    jobs = [
        await stack.queue([{"type": "assign", "params": {"round_robin": group}}], ticket=k)
        for k in keys
    ]
    await asyncio.gather(*(stack.settled(j) for j in jobs))
    assignees = [
        (await stack.desk.call("tickets.get", {"key": k}, by=OPERATOR))["assignee_id"] for k in keys
    ]
    assert sorted(assignees) == sorted(group * 2)


async def test_a_shadow_job_acts_on_nothing(stack: Stack) -> None:
    key = await stack.ticket()
    job_id = await stack.queue(ACTIONS[:1], ticket=key, mode="shadow")
    job = await stack.settled(job_id)
    assert job["state"] == "skipped" and job["skip_reason"] == "shadow"
    assert await stack.ticket_events(key) == ["ticket.created"]
