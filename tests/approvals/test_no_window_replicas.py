"""No window across replicas: two replicas of the tickets service, each with its own copy of
the gated rules, create tickets side by side while a rule is made gated. Each ticket still has
its lock exactly when its job is of the gated version. (The two replicas share the tickets
queue group, so the 80 creations are spread over both.)"""

from __future__ import annotations

import asyncio

from libs.events.settings import Settings
from libs.events.testing import eventually, isolated_system
from services.tickets.app import SERVICE as TICKETS
from tests.approvals.support import Gate
from tests.approvals.test_no_window import versions_fired
from tests.executor.conftest import FAST
from tests.tickets.support import ADMIN


async def test_two_tickets_replicas_agree_with_the_rules_service_on_a_rule_made_gated(
    gate: Gate, settings: Settings, database_url: str, nats_url: str
) -> None:
    second = isolated_system(
        settings.model_copy(update=FAST), database_url, nats_url, services=(TICKETS,),
        replica="r2",
    )  # fmt: skip
    async with second as other:
        rule = await gate.rule(approval=None)
        created: list[str] = []
        replicas = [Gate(gate.deps), Gate(other)]

        async def creator(index: int) -> None:
            for _ in range(20):
                created.append(await replicas[index % 2].deploy())

        async def make_it_gated() -> None:
            await eventually(lambda: asyncio.sleep(0, len(created)), until=lambda n: n >= 12)
            gated = {"approval": {"approvers": {"roles": ["admin"]}, "quorum": 1}}
            await gate.call("rules", "rules.update", {"id": rule["id"], "changes": gated}, by=ADMIN)

        await asyncio.gather(*(creator(i) for i in range(4)), make_it_gated())
        assert await versions_fired(gate, rule["id"], created) == {1, 2}
