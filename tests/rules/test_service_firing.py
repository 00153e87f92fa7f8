"""Firing on real Postgres and NATS: one job per (rule version, triggering event), over the
ticket as it was right after the event; the four dedup cases of the issue; shadow mode."""

from __future__ import annotations

import asyncio
from dataclasses import replace

from libs.events.replay import replay_consumer
from libs.events.settings import Settings
from libs.events.testing import eventually
from libs.rules.firing import job_id, job_stream
from services.rules.projection import RULES
from tests.rules.service_support import Rules, rules_system


async def test_a_matching_ticket_event_makes_a_job_naming_its_rule_version(rules: Rules) -> None:
    rule = await rules.create()
    created = await rules.open("OPS-1")
    await rules.open("OPS-2", service="db")  # the condition does not hold
    [job] = await eventually(rules.jobs, until=lambda jobs: len(jobs) == 1)
    assert job["stream_id"] == job_stream(job_id(rule["id"], 1, created.id))
    assert job["rule_version"] == 1 and job["ticket"] == "OPS-1" and job["mode"] == "active"
    assert job["actions"] == [{"type": "add_tag", "params": {"tag": "api"}}]
    assert job["context"]["ticket"]["fields"] == {"service": "api"}


async def test_conditions_see_the_ticket_right_after_the_event(rules: Rules) -> None:
    await rules.create(
        trigger={"event": "ticket.tagged"},
        conditions={"all": [{"field": "tags", "op": "contains", "value": "vip"}]},
    )
    await rules.open("OPS-1")
    await rules.tag("OPS-1", "other")
    vip = await rules.tag("OPS-1", "vip")
    later = await rules.tag("OPS-1", "third")  # vip is still there: fires again
    jobs = await eventually(rules.jobs, until=lambda jobs: len(jobs) == 2)
    assert [j["trigger_event_id"] for j in jobs] == [str(vip.id), str(later.id)]
    assert jobs[0]["context"]["ticket"]["tags"] == ["other", "vip"]
    assert jobs[0]["context"]["trigger"]["tag"] == "vip"


async def test_the_same_transition_twice_makes_two_jobs(rules: Rules) -> None:
    await rules.create(
        trigger={"event": "ticket.status_changed", "to": "in_progress"}, conditions=None
    )
    await rules.open("OPS-1")
    first = await rules.move("OPS-1", "open", "in_progress")
    await rules.move("OPS-1", "in_progress", "open")
    second = await rules.move("OPS-1", "open", "in_progress")
    jobs = await eventually(rules.jobs, until=lambda jobs: len(jobs) == 2)
    assert [j["trigger_event_id"] for j in jobs] == [str(first.id), str(second.id)]
    assert jobs[0]["stream_id"] != jobs[1]["stream_id"]


async def test_a_redelivered_event_makes_one_job(rules: Rules) -> None:
    await rules.create()
    created = await rules.open("OPS-1")
    await eventually(rules.jobs, until=lambda jobs: len(jobs) == 1)
    await rules.handled(created)
    dispatcher = rules.deps.dispatcher(RULES, service="rules")
    async with rules.deps.store.transaction() as conn:
        assert await dispatcher.apply(conn, created) is False, "the checkpoint skips a repeat"
    # and with the checkpoint gone (a lost commit of it), the job's stream still says no
    await rules.deps.pool.execute(
        "DELETE FROM eventstore.consumer_streams WHERE consumer = 'rules'"
    )
    async with rules.deps.store.transaction() as conn:
        assert await dispatcher.apply(conn, created) is True
    assert len(await rules.jobs()) == 1


async def test_a_replayed_event_makes_one_job(rules: Rules) -> None:
    rule = await rules.create()
    await rules.open("OPS-1")
    await rules.open("OPS-2")
    await eventually(rules.jobs, until=lambda jobs: len(jobs) == 2)
    await rules.call("rules.enable", {"id": rule["id"], "enabled": False})
    await rules.tag("OPS-1", "later")
    await rules.settled()
    before = await rules.count_events()
    live = await projected(rules)
    replayed = await replay_consumer(rules.deps.dispatcher(RULES, service="rules"), rules.deps)
    assert replayed >= 5
    assert await rules.count_events() == before, "the replay wrote nothing new"
    assert len(await rules.jobs()) == 2
    assert await projected(rules) == live, "the rebuilt read model equals the live one"
    assert (await rules.call("rules.get", {"id": rule["id"]}))["version"] == 1


async def projected(rules: Rules) -> dict[str, list[object]]:
    tables = {
        "rules.rules": "id",
        "rules.rule_versions": "rule_id, version",
        "rules.rule_states": "rule_id, seq",
        "rules.ticket_versions": "key, version",
        "rules.tickets": "key",
    }
    return {
        table: [
            tuple(r) for r in await rules.deps.pool.fetch(f"SELECT * FROM {table} ORDER BY {order}")
        ]
        for table, order in tables.items()
    }


async def test_the_ticket_before_a_parked_event_is_folded_from_the_store(rules: Rules) -> None:
    await rules.create(
        trigger={"event": "ticket.tagged"},
        conditions={"all": [{"field": "tags", "op": "contains", "value": v} for v in ("a", "vip")]},
    )
    await rules.open("OPS-1")
    await rules.tag("OPS-1", "a")
    await rules.settled()
    # as if the event at version 2 had been parked: no snapshot of the ticket after it
    await rules.deps.pool.execute("DELETE FROM rules.ticket_versions WHERE version = 2")
    vip = await rules.tag("OPS-1", "vip")
    [job] = await eventually(rules.jobs, until=lambda jobs: len(jobs) == 1)
    assert job["trigger_event_id"] == str(vip.id)
    assert job["context"]["ticket"]["tags"] == ["a", "vip"]


async def test_a_replay_fires_only_the_rule_versions_live_when_the_event_was_recorded(
    rules: Rules,
) -> None:
    rule = await rules.create()
    await rules.open("OPS-1")
    await eventually(rules.jobs, until=lambda jobs: len(jobs) == 1)
    await rules.call("rules.update", {"id": rule["id"], "changes": {"name": "Version 2"}})
    await rules.create(name="Made later")
    await replay_consumer(rules.deps.dispatcher(RULES, service="rules"), rules.deps)
    [job] = await rules.jobs()
    assert job["rule_version"] == 1, "neither version 2 nor a later rule fires on an old event"


async def test_two_replicas_make_one_job_per_firing(
    settings: Settings, database_url: str, nats_url: str
) -> None:
    async with (
        rules_system(settings, database_url, nats_url, "r1") as one,
        rules_system(settings, database_url, nats_url, "r2") as two,
    ):
        first, second = Rules(one), Rules(two)
        await first.create()
        await second.create(name="Another rule")
        keys = [f"OPS-{n}" for n in range(1, 21)]
        created = await asyncio.gather(*(first.open(key) for key in keys))
        for envelope in created:
            await first.handled(envelope)
        jobs = await first.jobs()
        assert len(jobs) == 40
        assert len({j["stream_id"] for j in jobs}) == 40


async def test_two_consumers_racing_on_one_event_make_one_job(rules: Rules) -> None:
    """Past every checkpoint (two consumers of their own): the store's uniqueness decides."""
    await rules.create()
    created = await rules.open("OPS-1")
    await eventually(rules.jobs, until=lambda jobs: len(jobs) == 1)
    racers = [
        rules.deps.dispatcher(replace(RULES, name=f"racer-{n}"), service="rules") for n in range(4)
    ]

    async def race(consumer_index: int) -> None:
        async with rules.deps.store.transaction() as conn:
            await racers[consumer_index].apply(conn, created)

    await asyncio.gather(*(race(n) for n in range(4)))
    assert len(await rules.jobs()) == 1


async def test_a_shadow_rule_records_a_skipped_job(rules: Rules) -> None:
    await rules.create(mode="shadow")
    await rules.open("OPS-1")
    [job] = await eventually(rules.jobs, until=lambda jobs: len(jobs) == 1)
    types = await rules.deps.pool.fetch(
        "SELECT type, data FROM eventstore.events WHERE stream_id = $1 ORDER BY version",
        job["stream_id"],
    )
    assert [r["type"] for r in types] == ["job.queued", "job.skipped"]
    assert types[1]["data"]["reason"] == "shadow"


async def test_a_disabled_or_archived_rule_does_not_fire(rules: Rules) -> None:
    off = await rules.create(enabled=False)
    gone = await rules.create(name="Archived")
    await rules.call("rules.archive", {"id": gone["id"]})
    created = await rules.open("OPS-1")
    await rules.handled(created)
    assert await rules.jobs() == []
    await rules.call("rules.enable", {"id": off["id"], "enabled": True})
    later = await rules.open("OPS-2")
    [job] = await eventually(rules.jobs, until=lambda jobs: len(jobs) == 1)
    assert job["trigger_event_id"] == str(later.id)
