"""The rules contract and catalog: api.md's names and shapes, bounds, and versioned events."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import get_args
from uuid import uuid4

import pytest
from pydantic import ValidationError

import libs.events.catalog  # noqa: F401  (registers every event type)
from libs.contracts.rules import (
    ACTION_PARAMS,
    ActionType,
    JobOut,
    JobState,
    RuleDefinition,
    RuleOut,
)
from libs.events.catalog import rules as catalog
from libs.events.registry import REGISTRY, DomainEvent
from services.rules.validation import validate_rule

API_MD = Path(__file__).resolve().parents[3] / "shared" / "spec" / "api.md"
needs_spec = pytest.mark.skipif(not API_MD.exists(), reason="the shared spec is not beside it")


def automation_section() -> str:
    text = API_MD.read_text()
    return text[text.index("## Automation") : text.index("## Alerts and incidents")]


@needs_spec
def test_the_rule_example_of_api_md_is_valid() -> None:
    section = automation_section()
    example = section[
        section.index("```json") + 7 : section.index("```", section.index("```json") + 7)
    ]
    definition = validate_rule(json.loads(example))
    assert definition.approval is not None and definition.approval.approvers.roles == ["admin"]


@needs_spec
def test_job_states_and_fields_are_api_md_s() -> None:
    section = automation_section()
    states = re.search(r"states `([a-z_,\s]+)`", section)
    assert states is not None
    assert tuple(s.strip() for s in states.group(1).split(",")) == get_args(JobState)
    shape = re.search(r"\*\*A job\*\*: `\{([^}]*)\}`", section)
    assert shape is not None
    named = {name.strip() for name in shape.group(1).split(",")}
    assert named <= set(JobOut.model_fields)


@needs_spec
def test_action_types_are_api_md_s() -> None:
    section = automation_section()
    listed = section[section.index("`actions[].type` and `params`") : section.index("Text params")]
    named = set(re.findall(r"`([a-z_]+)` (?:/|`\{)", listed))
    assert named == set(get_args(ActionType))


def test_every_action_type_has_a_params_model() -> None:
    assert set(ACTION_PARAMS) == set(get_args(ActionType))


def test_a_rule_as_read_has_id_version_and_times() -> None:
    now = datetime.now(UTC)
    action = {"type": "add_tag", "params": {"tag": "x"}}
    raw = {"name": "n", "trigger": {"event": "ticket.created"}, "actions": [action]}
    fields = validate_rule(raw).model_dump(by_alias=True)
    out = RuleOut(**fields, id="r-1", version=3, created_at=now, updated_at=now)
    shown = out.model_dump(mode="json", by_alias=True)
    assert {"id", "version", "created_at", "updated_at", "enabled", "mode"} <= set(shown)
    assert shown["enabled"] is True and shown["mode"] == "active" and shown["approval"] is None
    assert shown["trigger"]["event"] == "ticket.created"


def test_a_rule_needs_an_action_and_a_name() -> None:
    with pytest.raises(ValidationError):
        RuleDefinition.model_validate(
            {"name": " ", "trigger": {"event": "ticket.created"}, "actions": []}
        )


RULE_EVENTS = ["rule.created", "rule.revised", "rule.enabled", "rule.disabled", "rule.archived"]
JOB_EVENTS = [
    "job.queued", "job.approval_requested", "job.approved", "job.started", "job.step_succeeded",
    "job.step_failed", "job.retry_scheduled", "job.retry_due", "job.lease_expired",
    "job.succeeded", "job.skipped", "job.dead_lettered", "job.retry_requested",
]  # fmt: skip


@pytest.mark.parametrize("type_name", RULE_EVENTS + JOB_EVENTS)
def test_rule_and_job_events_are_registered_at_version_1(type_name: str) -> None:
    cls = REGISTRY.class_for(type_name)
    assert cls.__module__ == catalog.__name__
    assert cls.event_type == type_name and cls.schema_version == 1


def test_the_catalog_defines_no_other_event_types() -> None:
    defined = {
        cls.event_type
        for cls in vars(catalog).values()
        if isinstance(cls, type) and issubclass(cls, DomainEvent) and cls is not DomainEvent
    }
    assert defined == set(RULE_EVENTS + JOB_EVENTS)


def test_a_stored_job_queued_decodes_back() -> None:
    event = catalog.JobQueued(
        job_id="ab" * 32, rule_id="r-1", rule_version=2, trigger="ticket.created",
        trigger_event_id=uuid4(), ticket="OPS-1", mode="active",
        actions=[{"type": "add_tag", "params": {"tag": "x"}}], context={"ticket": {"key": "OPS-1"}},
    )  # fmt: skip
    stored = json.loads(event.model_dump_json())
    assert REGISTRY.decode("job.queued", 1, stored) == event
    skipped = REGISTRY.decode("job.skipped", 1, {"reason": "approval_expired", "approval_id": "a"})
    assert isinstance(skipped, catalog.JobSkipped)
    with pytest.raises(Exception, match="does not validate"):
        REGISTRY.decode("job.skipped", 1, {"reason": "bored"})
