"""The loop guard at the service level: an event written by automation (the executor acting
for a job) fires only rules with `on_automation`, and nothing past the causation depth limit
(`Settings.rules_max_causation_depth`, 3 by default)."""

from __future__ import annotations

from libs.events.envelope import Actor, Metadata
from libs.events.log_reads import COLUMNS, envelope_of
from libs.events.settings import Settings
from libs.events.testing import eventually
from tests.rules.service_support import Rules, definition, rules_system


def by_executor(depth: int) -> Metadata:
    return Metadata(actor=Actor.service("executor"), service="executor", causation_depth=depth)


async def status_rules(rules: Rules) -> tuple[str, str]:
    plain = await rules.create(
        name="Plain", trigger={"event": "ticket.status_changed"}, conditions=None
    )
    opted = await rules.create(
        name="Opted in",
        trigger={"event": "ticket.status_changed"},
        conditions=None,
        on_automation=True,
    )
    return plain["id"], opted["id"]


async def test_an_event_of_automation_fires_only_opted_in_rules(rules: Rules) -> None:
    plain, opted = await status_rules(rules)
    await rules.open("OPS-1")
    human = await rules.move("OPS-1", "open", "in_progress")
    automated = await rules.move("OPS-1", "in_progress", "resolved", by_executor(2))
    jobs = await eventually(rules.jobs, until=lambda jobs: len(jobs) == 3)
    fired = {(j["trigger_event_id"], j["rule_id"]) for j in jobs}
    assert fired == {
        (str(human.id), plain),
        (str(human.id), opted),
        (str(automated.id), opted),
    }


async def test_nothing_fires_past_the_causation_depth_limit(rules: Rules) -> None:
    _, opted = await status_rules(rules)
    await rules.open("OPS-1")
    at_limit = await rules.move("OPS-1", "open", "in_progress", by_executor(3))
    past = await rules.move("OPS-1", "in_progress", "resolved", by_executor(4))
    await rules.handled(past)
    jobs = await rules.jobs()
    assert [(j["trigger_event_id"], j["rule_id"]) for j in jobs] == [(str(at_limit.id), opted)]


async def test_the_depth_limit_is_a_setting(
    settings: Settings, database_url: str, nats_url: str
) -> None:
    shallow = settings.model_copy(update={"rules_max_causation_depth": 1})
    async with rules_system(shallow, database_url, nats_url) as deps:
        rules = Rules(deps)
        _, opted = await status_rules(rules)
        await rules.open("OPS-1")
        at_limit = await rules.move("OPS-1", "open", "in_progress", by_executor(1))
        past = await rules.move("OPS-1", "in_progress", "resolved", by_executor(2))
        await rules.handled(past)
        jobs = await rules.jobs()
        assert [(j["trigger_event_id"], j["rule_id"]) for j in jobs] == [(str(at_limit.id), opted)]


async def run_jobs_like_the_executor(rules: Rules) -> int:
    """Play the executor: every queued set_status job not yet acted on changes the ticket's
    status, caused by its job (so one deeper); repeat until no job is left. Returns the jobs."""
    done: set[str] = set()
    while True:
        await rules.settled()
        rows = await rules.deps.pool.fetch(
            f"SELECT {COLUMNS} FROM eventstore.events WHERE type = 'job.queued' ORDER BY position"
        )
        new = [envelope_of(r) for r in rows if str(r["id"]) not in done]
        if not new:
            return len(done)
        for job in new:
            done.add(str(job.id))
            key = job.data["ticket"]
            now = await rules.deps.store.read_stream(f"ticket-{key}")
            status = [e.data["to_status"] for e in now if e.type == "ticket.status_changed"]
            meta = job.metadata.caused_by(job, actor=Actor.service("executor"))
            target = job.data["actions"][0]["params"]["status"]
            await rules.move(key, status[-1] if status else "open", target, meta)


def ping_pong(on_automation: bool) -> list[dict[str, object]]:
    return [
        definition(
            name=f"{frm} to {to}",
            trigger={"event": "ticket.status_changed", "to": frm},
            conditions=None,
            actions=[{"type": "set_status", "params": {"status": to}}],
            on_automation=on_automation,
        )
        for frm, to in [
            ("in_progress", "waiting_for_requester"),
            ("waiting_for_requester", "in_progress"),
        ]
    ]


async def test_two_opted_in_rules_ping_ponging_a_ticket_stop_at_the_depth_limit(
    rules: Rules,
) -> None:
    for rule in ping_pong(on_automation=True):
        await rules.call("rules.create", {"definition": rule})
    await rules.open("OPS-1")
    await rules.move("OPS-1", "open", "in_progress")
    assert await run_jobs_like_the_executor(rules) == 2
    last = await rules.deps.pool.fetchval(
        "SELECT metadata->>'causation_depth' FROM eventstore.events "
        "WHERE type = 'ticket.status_changed' ORDER BY position DESC LIMIT 1"
    )
    assert last == "4", "the chain ends at the event past the limit, which fires nothing"


async def test_without_opting_in_each_rule_fires_once(rules: Rules) -> None:
    for rule in ping_pong(on_automation=False):
        await rules.call("rules.create", {"definition": rule})
    await rules.open("OPS-1")
    await rules.move("OPS-1", "open", "in_progress")
    await rules.open("OPS-2")
    await rules.move("OPS-2", "open", "waiting_for_requester")
    assert await run_jobs_like_the_executor(rules) == 2
    assert sorted(str(j["ticket"]) for j in await rules.jobs()) == ["OPS-1", "OPS-2"]


async def test_a_job_carries_the_causation_chain_on(rules: Rules) -> None:
    await status_rules(rules)
    await rules.open("OPS-1")
    moved = await rules.move("OPS-1", "open", "in_progress", by_executor(1))
    await eventually(rules.jobs, until=lambda jobs: len(jobs) == 1)
    meta = await rules.deps.pool.fetchval(
        "SELECT metadata FROM eventstore.events WHERE type = 'job.queued'"
    )
    assert meta["causation_id"] == str(moved.id) and meta["causation_depth"] == 2
    assert meta["actor"] == {"kind": "service", "id": "rules"}
