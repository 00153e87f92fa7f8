"""Approvals waiting, in-app: a gated rule's request notifies each of its approvers (the named
users and the active holders of its roles), never the ticket's requester, once however often the
event arrives; an escalation notifies those it names again. Every service a gated firing
crosses runs, on real Postgres and NATS (the tests/approvals fixtures' deployment)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from libs.events.catalog.approvals import ApprovalRequested
from libs.events.consumers import HandlerContext
from libs.events.settings import Settings
from libs.events.testing import eventually
from services.executor.notifications.approvals import APPROVAL_NOTICES, on_requested
from tests.approvals.support import Gate, gate_system
from tests.executor.notices import inbox, people_known, set_active
from tests.tickets.support import ADMIN, ALICE, BOB, OPERATOR, PEOPLE, Who


@pytest.fixture
async def gate(settings: Settings, database_url: str, nats_url: str) -> AsyncIterator[Gate]:
    """As tests/approvals/conftest.py's, and the executor knows every person too."""
    async with gate_system(settings, database_url, nats_url) as running:
        await people_known(running.deps, len(PEOPLE))
        yield running


async def waiting_for(gate: Gate, who: Who, count: int) -> list[dict[str, Any]]:
    """`who`'s notifications once there are `count` of them."""
    return await eventually(
        lambda: inbox(gate.deps, who), until=lambda items: len(items) >= count, timeout=20
    )


async def test_the_approvers_of_a_gated_request_are_notified_and_the_requester_is_not(
    gate: Gate,
) -> None:
    await gate.rule()  # operators and admins approve
    key = await gate.deploy(by=ALICE)
    request = await gate.approval_of(key)
    for who in (OPERATOR, ADMIN):
        [got] = await waiting_for(gate, who, 1)
        assert got["kind"] == "approval_waiting" and got["approval_id"] == request["id"]
        assert got["ticket"] == key and key in got["message"], got
    assert await inbox(gate.deps, ALICE) == []
    assert await inbox(gate.deps, BOB) == []


async def test_named_approvers_and_active_role_members_only_never_the_requester(
    gate: Gate,
) -> None:
    await set_active(gate.deps, OPERATOR.id, False)
    approval = {"approvers": {"users": [ALICE.id, BOB.id], "roles": ["operator", "admin"]}}
    await gate.rule(approval=approval)
    key = await gate.deploy(by=ALICE)
    request = await gate.approval_of(key)
    for who in (BOB, ADMIN):
        [got] = await waiting_for(gate, who, 1)
        assert got["approval_id"] == request["id"]
    assert await inbox(gate.deps, ALICE) == []  # named, but the requester: never
    assert await inbox(gate.deps, OPERATOR) == []  # deactivated


async def test_a_redelivered_request_notifies_nobody_twice(gate: Gate) -> None:
    await gate.rule()
    key = await gate.deploy(by=ALICE)
    request = await gate.approval_of(key)
    await waiting_for(gate, ADMIN, 1)
    deps = gate.deps
    [first] = await deps.store.read_stream(f"approval-{request['id']}", to_version=1)
    event = deps.store.registry.load(first)
    assert isinstance(event, ApprovalRequested)
    for _ in range(2):  # past the consumer's checkpoint, as a second replica's run would be
        async with deps.store.transaction() as conn:
            ctx = HandlerContext(
                conn=conn,
                store=deps.store,
                envelope=first,
                consumer=APPROVAL_NOTICES.name,
                service="executor",
                settings=deps.settings,
            )
            await on_requested(ctx, event)
    assert len(await inbox(deps, ADMIN)) == 1
    assert len(await inbox(deps, OPERATOR)) == 1


async def test_an_escalated_request_notifies_its_approvers_again(gate: Gate) -> None:
    await gate.rule(approval={"approvers": {"roles": ["admin"]}, "escalate_after": "1s"})
    key = await gate.deploy(by=ALICE)
    request = await gate.approval_of(key)
    items = await waiting_for(gate, ADMIN, 2)
    assert [i["kind"] for i in items] == ["approval_escalated", "approval_waiting"]
    assert all(i["approval_id"] == request["id"] for i in items)
    assert await inbox(gate.deps, ALICE) == []
    assert await inbox(gate.deps, OPERATOR) == []
