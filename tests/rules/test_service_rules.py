"""The rules service's rule methods over NATS: create, PATCH as a new version, enable/disable,
DELETE as archive, reads, who may call what, and INVALID_RULE with every error's path."""

from __future__ import annotations

from typing import Any, get_args

from services.rules.refusals import RefusalCode
from services.rules.rpc_edge import STATUS
from tests.rules.service_support import OPERATOR, REQUESTER, Rules, definition


def test_every_refusal_code_has_a_status() -> None:
    assert set(STATUS) == set(get_args(RefusalCode))


async def test_a_created_rule_reads_back_at_version_1(rules: Rules) -> None:
    made = await rules.create()
    assert made["version"] == 1 and made["enabled"] is True
    assert made["name"] == "Tag API incidents"
    assert await rules.call("rules.get", {"id": made["id"]}, by=OPERATOR) == made
    page = await rules.call("rules.list", {}, by=OPERATOR)
    assert [r["id"] for r in page["items"]] == [made["id"]]


async def test_an_invalid_rule_is_refused_with_the_path_of_every_error(rules: Rules) -> None:
    bad = definition(
        trigger={"event": "ticket.exploded"},
        actions=[{"type": "add_tag", "params": {}}, {"type": "notify", "params": {"to": "x"}}],
    )
    refused = await rules.refused("rules.create", {"definition": bad})
    assert refused.status == 422 and refused.code == "INVALID_RULE"
    paths = {error["path"] for error in refused.details}
    assert {"trigger.event", "actions[0].params.tag", "actions[1].params.to"} <= paths
    assert await rules.jobs() == [] and (await rules.call("rules.list", {}))["items"] == []


async def test_a_shape_error_is_invalid_rule_too(rules: Rules) -> None:
    refused = await rules.refused("rules.create", {"definition": {"name": 5, "actions": "x"}})
    assert refused.code == "INVALID_RULE"
    assert {"name", "actions", "trigger"} <= {e["path"] for e in refused.details}


async def test_patch_makes_a_new_version_and_keeps_the_old_one(rules: Rules) -> None:
    made = await rules.create()
    patched = await rules.call(
        "rules.update", {"id": made["id"], "changes": {"name": "Tag them all"}}
    )
    assert patched["version"] == 2 and patched["name"] == "Tag them all"
    same = await rules.call("rules.update", {"id": made["id"], "changes": patched})
    assert same["version"] == 2, "a PATCH that changes nothing makes no version"
    versions = await rules.call("rules.versions", {"id": made["id"]}, by=OPERATOR)
    assert [v["definition"]["name"] for v in versions["items"]] == [
        "Tag API incidents",
        "Tag them all",
    ]


async def test_a_patch_is_checked_whole(rules: Rules) -> None:
    made = await rules.create()
    refused = await rules.refused(
        "rules.update", {"id": made["id"], "changes": {"trigger": {"event": "alert.received"}}}
    )
    assert refused.code == "INVALID_RULE"
    paths = {e["path"] for e in refused.details}
    assert paths == {"conditions.field", "actions[0].type"}, "its conditions and actions too"


async def test_enable_and_disable_change_no_version(rules: Rules) -> None:
    made = await rules.create()
    off = await rules.call("rules.enable", {"id": made["id"], "enabled": False})
    assert off["enabled"] is False and off["version"] == 1
    on = await rules.call("rules.update", {"id": made["id"], "changes": {"enabled": True}})
    assert on["enabled"] is True and on["version"] == 1


async def test_delete_archives_the_rule_and_its_history_stays(rules: Rules) -> None:
    made = await rules.create()
    gone = await rules.call("rules.archive", {"id": made["id"]})
    assert gone["enabled"] is False
    assert (await rules.refused("rules.get", {"id": made["id"]})).status == 404
    assert (await rules.call("rules.list", {}))["items"] == []
    refused = await rules.refused("rules.update", {"id": made["id"], "changes": {"name": "x"}})
    assert refused.code == "RULE_ARCHIVED" and refused.status == 409
    types = await rules.deps.pool.fetch(
        "SELECT type FROM eventstore.events WHERE stream_id = $1 ORDER BY version",
        f"rule-{made['id']}",
    )
    assert [r["type"] for r in types] == ["rule.created", "rule.disabled", "rule.archived"]


async def test_staff_read_and_only_admins_write(rules: Rules) -> None:
    made = await rules.create()
    for method, body in [
        ("rules.create", {"definition": definition()}),
        ("rules.update", {"id": made["id"], "changes": {"name": "x"}}),
        ("rules.enable", {"id": made["id"], "enabled": False}),
        ("rules.archive", {"id": made["id"]}),
    ]:
        assert (await rules.refused(method, body, by=OPERATOR)).status == 403
    for method, body in [("rules.get", {"id": made["id"]}), ("rules.list", {})]:
        assert (await rules.refused(method, body, by=REQUESTER)).status == 403
        await rules.call(method, body, by=OPERATOR)


async def test_lists_are_paged(rules: Rules) -> None:
    made = {(await rules.create(name=f"rule {i}"))["id"] for i in range(3)}
    first = await rules.call("rules.list", {"limit": 2})
    second = await rules.call("rules.list", {"limit": 2, "cursor": first["next_cursor"]})
    assert second["next_cursor"] is None
    assert {r["id"] for r in first["items"] + second["items"]} == made
    refused = await rules.refused("rules.list", {"cursor": "bm90IG91cnM="})
    assert refused.code == "INVALID_CURSOR"


async def test_a_missing_rule_is_not_found(rules: Rules) -> None:
    calls: list[tuple[str, dict[str, Any]]] = [
        ("rules.get", {"id": "nope"}),
        ("rules.update", {"id": "nope", "changes": {}}),
        ("rules.enable", {"id": "nope", "enabled": True}),
        ("rules.archive", {"id": "nope"}),
        ("rules.versions", {"id": "nope"}),
    ]
    for method, body in calls:
        assert (await rules.refused(method, body)).status == 404, method
