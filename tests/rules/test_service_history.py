"""Dry run and diff over stored history: what a draft, or each of two versions, would have
fired on since an instant, written nowhere."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.rules.service_support import OPERATOR, Rules, definition


async def test_a_dry_run_shows_what_a_draft_would_fire_on_and_writes_nothing(
    rules: Rules,
) -> None:
    since = datetime.now(UTC) - timedelta(minutes=1)
    api = await rules.open("OPS-1")
    await rules.open("OPS-2", service="db")
    await rules.move("OPS-1", "open", "in_progress")
    await rules.settled()
    before = await rules.count_events()
    answer = await rules.call("rules.dry_run", {"rule": definition(), "since": since.isoformat()})
    assert answer["evaluated"] == 2 and answer["truncated"] is False
    [hit] = answer["matches"]
    assert hit["event_id"] == str(api.id) and hit["ticket"] == "OPS-1"
    assert hit["actions"] == [{"type": "add_tag", "params": {"tag": "api"}}]
    assert await rules.count_events() == before, "a dry run appends nothing"
    assert await rules.jobs() == []


async def test_a_dry_run_counts_only_events_since_the_instant(rules: Rules) -> None:
    await rules.open("OPS-1")
    await rules.settled()
    later = datetime.now(UTC) + timedelta(seconds=1)
    answer = await rules.call("rules.dry_run", {"rule": definition(), "since": later.isoformat()})
    assert answer == {"evaluated": 0, "matches": [], "truncated": False}


async def test_a_dry_run_of_an_invalid_draft_is_invalid_rule(rules: Rules) -> None:
    refused = await rules.refused(
        "rules.dry_run",
        {"rule": definition(actions=[]), "since": datetime.now(UTC).isoformat()},
    )
    assert refused.code == "INVALID_RULE" and refused.details[0]["path"] == "actions"


async def test_a_dry_run_is_an_admins(rules: Rules) -> None:
    body = {"rule": definition(), "since": datetime.now(UTC).isoformat()}
    assert (await rules.refused("rules.dry_run", body, by=OPERATOR)).status == 403


async def test_a_diff_shows_what_only_one_version_fires_on(rules: Rules) -> None:
    since = datetime.now(UTC) - timedelta(minutes=1)
    rule = await rules.create(enabled=False)
    await rules.call(
        "rules.update",
        {
            "id": rule["id"],
            "changes": {"conditions": {"field": "fields.service", "op": "in", "value": ["db"]}},
        },
    )
    api = await rules.open("OPS-1")
    db = await rules.open("OPS-2", service="db")
    await rules.open("OPS-3", service="web")
    await rules.settled()
    diff = await rules.call(
        "rules.diff", {"id": rule["id"], "a": 1, "b": 2, "since": since.isoformat()}, by=OPERATOR
    )
    assert diff["evaluated"] == 3 and diff["both"] == 0
    assert [m["event_id"] for m in diff["only_a"]] == [str(api.id)]
    assert [m["event_id"] for m in diff["only_b"]] == [str(db.id)]
    missing = await rules.refused(
        "rules.diff", {"id": rule["id"], "a": 1, "b": 9, "since": since.isoformat()}
    )
    assert missing.status == 404
