"""Text params as sandboxed templates: rendering, refusals, and clear failures."""

from __future__ import annotations

import time

import pytest

from libs.rules.triggers import TEMPLATE_ROOTS
from libs.templates import MAX_OUTPUT, TemplateFailed, check, render, render_json
from tests.rules.support import TICKET

CONTEXT = {"ticket": TICKET, "trigger": {"from": "open", "to": "resolved"}}


def test_renders_the_ticket_key_and_title() -> None:
    text = "{{ ticket.key }}: {{ ticket.title }} ({{ trigger.from }} -> {{ trigger.to }})"
    assert render(text, CONTEXT) == "OPS-7: Deploy checkout 1.2 (open -> resolved)"


def test_filters_and_conditionals_work() -> None:
    text = "{{ ticket.tags | join(', ') | upper }}{% if ticket.priority == 'high' %}!{% endif %}"
    assert render(text, CONTEXT) == "PROD!"
    assert render("{{ ticket.assignee_id }}", CONTEXT) == ""  # None renders as nothing


def test_a_json_body_has_every_string_rendered() -> None:
    body = {"text": "{{ ticket.key }}", "items": ["{{ ticket.priority }}", 3], "ok": True}
    assert render_json(body, CONTEXT) == {"text": "OPS-7", "items": ["high", 3], "ok": True}


def test_a_missing_variable_is_a_clear_error() -> None:
    with pytest.raises(TemplateFailed, match="has no attribute 'nonexistent'"):
        render("{{ ticket.nonexistent }}", CONTEXT)
    with pytest.raises(TemplateFailed, match="'incident' is undefined"):
        render("{{ incident.analysis.root_cause }}", CONTEXT)


@pytest.mark.parametrize(
    "text",
    [
        "{{ ''.__class__ }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ ticket.__class__ }}",
        "{{ ticket['__class__'] }}",
        "{{ cycler.__init__.__globals__ }}",
    ],
)
def test_the_sandbox_refuses_internals(text: str) -> None:
    with pytest.raises(TemplateFailed):
        render(text, CONTEXT)
    assert check(text, TEMPLATE_ROOTS | {"cycler"}) is not None


def test_attributes_reached_by_a_computed_name_are_refused_when_rendered() -> None:
    # no check can see the name; the sandbox refuses it at render time
    with pytest.raises(TemplateFailed, match="unsafe"):
        render("{{ ticket.key[('_' ~ '_class_' ~ '_')] }}", CONTEXT)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("{% for t in ticket.tags %}{{ t }}{% endfor %}", "loops"),
        ("{{ ticket.key.upper() }}", "calls"),
        ("{{ 9 ** 9 ** 9 }}", "**"),
        ("{% macro m() %}x{% endmacro %}", "macros"),
        ("{% include 'x' %}", "includes"),
        ("{% set a = ticket.key %}{% set a = a ~ a %}{{ a }}", "assignments"),
        ("{% with a = ticket.key ~ ticket.key %}{{ a }}{% endwith %}", "with blocks"),
        ("{{ ticket.key | center(1000000000) }}", "No filter named 'center'"),
        ("{{ lipsum }}", "unknown variable(s) lipsum"),
        ("{{ ticket.key ", "does not parse (line 1)"),
    ],
)
def test_unbounded_or_unknown_constructs_are_refused_when_checked(text: str, problem: str) -> None:
    found = check(text, TEMPLATE_ROOTS)
    assert found is not None and problem in found
    with pytest.raises(TemplateFailed):
        render(text, CONTEXT)


def test_output_is_bounded() -> None:
    with pytest.raises(TemplateFailed, match=f"more than {MAX_OUTPUT}"):
        render("{{ ticket.key * 100000000 }}", CONTEXT)
    with pytest.raises(TemplateFailed, match="more than 10 characters"):
        render("{{ ticket.title }}", CONTEXT, limit=10)
    with pytest.raises(TemplateFailed, match="formatting"):
        render("{{ '%999999999s' % ticket.key }}", CONTEXT)
    started = time.monotonic()
    with pytest.raises(TemplateFailed):
        render_json(["{{ ticket.title }}"] * 10_000, CONTEXT, limit=1_000)
    assert time.monotonic() - started < 1


def test_a_failing_filter_is_a_template_failure_not_a_crash() -> None:
    with pytest.raises(TemplateFailed, match="the template failed"):
        render("{{ ticket.tags | sum }}", CONTEXT)


def test_user_text_in_the_context_is_never_evaluated() -> None:
    hostile = {"ticket": {**TICKET, "title": "{{ ''.__class__ }} {0.__class__}"}}
    assert render("{{ ticket.title }}", hostile) == "{{ ''.__class__ }} {0.__class__}"
