"""Rules as code: export as YAML, plan and apply a file (create / change / unchanged),
idempotently; an invalid file is refused whole, each error with its line."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest
import yaml

from libs.events.settings import Settings
from services.rules.rules_as_code import InvalidFile, apply, export, parse
from tests.rules.service_support import Rules

FILE = """\
rules:
- id: tag-api
  name: Tag API incidents
  trigger: {event: ticket.created}
  conditions: {field: fields.service, op: eq, value: api}
  actions:
  - type: add_tag
    params: {tag: api}
- id: urgent
  name: Urgent incidents
  enabled: false
  trigger:
    event: ticket.priority_changed
  actions:
  - type: notify
    params: {to: assignee, message: "{{ ticket.key }} is urgent"}
"""


async def rule_events(rules: Rules) -> int:
    return int(
        await rules.deps.pool.fetchval(
            "SELECT count(*) FROM eventstore.events WHERE stream_id LIKE 'rule-%'"
        )
    )


async def test_apply_plans_creates_and_is_idempotent(rules: Rules) -> None:
    dry = await apply(rules.deps, FILE, dry_run=True)
    assert [(s.action, s.rule_id) for s in dry.steps] == [
        ("create", "tag-api"),
        ("create", "urgent"),
    ]
    assert "nothing written" in dry.report() and await rule_events(rules) == 0
    done = await apply(rules.deps, FILE, dry_run=False)
    assert done.applied and await rule_events(rules) == 2
    urgent = await rules.call("rules.get", {"id": "urgent"})
    assert urgent["enabled"] is False and urgent["version"] == 1
    again = await apply(rules.deps, FILE, dry_run=False)
    assert {s.action for s in again.steps} == {"unchanged"}
    assert await rule_events(rules) == 2, "the same file twice makes no new version"


async def test_a_changed_entry_is_planned_as_a_change_naming_what_changed(rules: Rules) -> None:
    await apply(rules.deps, FILE, dry_run=False)
    changed = FILE.replace("enabled: false", "enabled: true").replace("tag: api", "tag: API-1")
    plan = await apply(rules.deps, changed, dry_run=False)
    steps = {s.rule_id: (s.action, s.changed) for s in plan.steps}
    assert steps == {"tag-api": ("change", ("actions",)), "urgent": ("change", ("enabled",))}
    assert (await rules.call("rules.get", {"id": "tag-api"}))["version"] == 2
    assert (await rules.call("rules.get", {"id": "urgent"}))["version"] == 1


async def test_export_then_apply_changes_nothing(rules: Rules) -> None:
    await rules.create()
    await apply(rules.deps, FILE, dry_run=False)
    exported = await export(rules.deps)
    assert len(yaml.safe_load(exported)["rules"]) == 3
    plan = await apply(rules.deps, exported, dry_run=False)
    assert {s.action for s in plan.steps} == {"unchanged"}


def test_an_invalid_file_is_refused_whole_with_the_line_of_every_error() -> None:
    bad = FILE.replace("tag: api}", "tagg: api}").replace(
        "event: ticket.priority_changed", "event: nope"
    )
    bad += "- id: tag-api\n  name: Again\n  trigger: {event: ticket.created}\n  actions: []\n"
    with pytest.raises(InvalidFile) as caught:
        parse(bad, "rules.yaml")
    found = {(p.line, p.path) for p in caught.value.problems}
    assert (8, "rules[0].actions[0].params.tag") in found  # the params mapping's line
    assert (8, "rules[0].actions[0].params.tagg") in found
    assert (13, "rules[1].trigger.event") in found
    assert (17, "rules[2].id") in found  # the repeated id
    assert (20, "rules[2].actions") in found
    assert "rules.yaml:line 13: rules[1].trigger.event" in str(caught.value)


@pytest.mark.parametrize(
    ("text", "line"),
    [("rules:\n- id: x\n  name: [unclosed\n", 4), ("just text", 1), ("rules: {}\n", 1)],
)
def test_a_file_that_is_not_a_rules_file_is_refused_with_its_line(text: str, line: int) -> None:
    with pytest.raises(InvalidFile) as caught:
        parse(text)
    assert caught.value.problems[0].line == line


async def test_the_command_exports_and_applies(
    settings: Settings, database_url: str, nats_url: str, tmp_path: Path
) -> None:
    env = {
        **os.environ,
        "OPSLEDGER_DATABASE_URL": database_url,
        "OPSLEDGER_NATS_URL": nats_url,
        "OPSLEDGER_NAMESPACE": settings.namespace,
        "OPSLEDGER_DATA_DIR": str(tmp_path / "data"),
        "OPSLEDGER_ENV": "test",
    }

    async def opsledger(*args: str) -> tuple[int, str]:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "libs.events.cli", *args,
            env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        out, _ = await process.communicate()
        return int(process.returncode or 0), out.decode()

    path = tmp_path / "rules.yaml"
    path.write_text(FILE)
    code, out = await opsledger("rules", "apply", "-f", str(path), "--dry-run")
    assert code == 0 and "2 to create" in out and "nothing written" in out, out
    code, out = await opsledger("rules", "apply", "-f", str(path))
    assert code == 0 and "(applied)" in out, out
    code, exported = await opsledger("rules", "export")
    assert code == 0 and "tag-api" in exported and "urgent" in exported
    path.write_text(exported)
    code, out = await opsledger("rules", "apply", "-f", str(path))
    assert code == 0 and "2 unchanged" in out, out
    path.write_text(FILE.replace("event: ticket.priority_changed", "event: nope"))
    code, out = await opsledger("rules", "apply", "-f", str(path))
    assert code == 1 and "line 13" in out, out
