"""Rule templates: five ship disabled, each valid; one call enables one, idempotently."""

from __future__ import annotations

import pytest

from libs.events.catalog.tickets import TicketCreated
from libs.events.testing import eventually
from services.rules.starters import STARTERS
from services.rules.validation import validate_rule
from tests.rules.service_support import OPERATOR, TICKETS, Rules


@pytest.mark.parametrize("key", sorted(STARTERS))
def test_every_template_is_a_valid_rule(key: str) -> None:
    validate_rule(STARTERS[key].definition)


def test_the_five_templates_of_the_issue_ship() -> None:
    assert len(STARTERS) == 5


async def test_templates_list_disabled_until_enabled(rules: Rules) -> None:
    listed = await rules.call("rules.templates", {}, by=OPERATOR)
    assert {t["key"] for t in listed["items"]} == set(STARTERS)
    assert not any(t["enabled"] for t in listed["items"])
    assert (await rules.call("rules.list", {}))["items"] == [], "templates are not rules yet"
    made = await rules.call("rules.templates.enable", {"key": "tag-production-deployments"})
    assert made["id"] == "template-tag-production-deployments" and made["enabled"] is True
    again = await rules.call("rules.templates.enable", {"key": "tag-production-deployments"})
    assert again["version"] == 1, "enabling twice makes no new version"
    listed = await rules.call("rules.templates", {})
    enabled = {t["key"] for t in listed["items"] if t["enabled"]}
    assert enabled == {"tag-production-deployments"}


async def test_an_enabled_template_fires(rules: Rules) -> None:
    await rules.call("rules.templates.enable", {"key": "tag-production-deployments"})
    deployment = TicketCreated(
        key="OPS-1",
        number=1,
        type="deployment",
        type_version=1,
        title="Ship 1.2",
        priority="medium",
        requester_id="u-alice",
        fields={"environment": "production"},
    )
    await rules.append("OPS-1", [deployment], TICKETS)
    [job] = await eventually(rules.jobs, until=lambda jobs: len(jobs) == 1)
    assert job["rule_id"] == "template-tag-production-deployments"


async def test_a_template_is_enabled_with_changes_in_one_call(rules: Rules) -> None:
    on_call = [{"type": "assign", "params": {"on_call": "sched-ops"}}]
    made = await rules.call(
        "rules.templates.enable",
        {"key": "urgent-incidents-to-on-call", "changes": {"actions": on_call}},
    )
    assert made["actions"] == on_call and made["enabled"] is True
    refused = await rules.refused(
        "rules.templates.enable", {"key": "urgent-incidents-to-on-call", "changes": {"actions": []}}
    )
    assert refused.code == "INVALID_RULE"
    assert (await rules.refused("rules.templates.enable", {"key": "no-such"})).status == 404
    assert (await rules.refused("rules.templates.enable", {"key": "x"}, by=OPERATOR)).status == 403
