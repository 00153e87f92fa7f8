"""The condition language: parsing, evaluation and its limits."""

from __future__ import annotations

import re
from typing import Any

import pytest
import re2
from pydantic import ValidationError

from libs.events.conditions import (
    MAX_DEPTH,
    MAX_MATCH_INPUT,
    MAX_PATTERN_LENGTH,
    AllOf,
    Leaf,
    NotOf,
    dump_condition,
    evaluate,
    parse_condition,
    parse_duration,
    referenced_fields,
)


def leaf(field: str, op: str, value: Any) -> dict[str, Any]:
    return {"field": field, "op": op, "value": value}


def holds(condition: dict[str, Any], context: dict[str, Any]) -> bool:
    return evaluate(parse_condition(condition), context)


def nested_not(levels: int) -> dict[str, Any]:
    node: dict[str, Any] = leaf("a", "eq", 1)
    for _ in range(levels - 1):
        node = {"not": node}
    return node


TICKET = {
    "priority": "high",
    "tags": ["db", "prod"],
    "fields": {"environment": "production", "replicas": 3, "urgent": True, "note": None},
    "waiting": "2h",
    "title": "Disk full on db-1",
}


# --- leaves --------------------------------------------------------------------------------


def test_eq_compares_the_value_at_a_dotted_path() -> None:
    assert holds(leaf("fields.environment", "eq", "production"), TICKET)
    assert not holds(leaf("fields.environment", "eq", "staging"), TICKET)


def test_eq_does_not_treat_true_as_one() -> None:
    assert not holds(leaf("fields.urgent", "eq", 1), TICKET)
    assert holds(leaf("fields.urgent", "eq", True), TICKET)


def test_ne_holds_when_the_value_differs() -> None:
    assert holds(leaf("priority", "ne", "low"), TICKET)
    assert not holds(leaf("priority", "ne", "high"), TICKET)


def test_in_and_not_in_test_membership_of_a_scalar() -> None:
    assert holds(leaf("priority", "in", ["high", "urgent"]), TICKET)
    assert holds(leaf("priority", "not_in", ["low", "medium"]), TICKET)
    assert not holds(leaf("priority", "not_in", ["high"]), TICKET)


def test_in_on_a_list_field_holds_when_any_element_is_listed() -> None:
    assert holds(leaf("tags", "in", ["network", "db"]), TICKET)
    assert holds(leaf("tags", "not_in", ["network", "web"]), TICKET)


def test_contains_finds_substrings_and_list_elements() -> None:
    assert holds(leaf("title", "contains", "Disk full"), TICKET)
    assert holds(leaf("tags", "contains", "db"), TICKET)
    assert not holds(leaf("tags", "contains", "d"), TICKET)
    assert not holds(leaf("fields.replicas", "contains", 3), TICKET)


def test_matches_searches_with_the_regex() -> None:
    assert holds(leaf("title", "matches", r"db-\d+"), TICKET)
    assert not holds(leaf("title", "matches", r"^db"), TICKET)
    assert not holds(leaf("fields.replicas", "matches", "3"), TICKET)


def test_matches_reads_at_most_the_input_limit() -> None:
    long_text = "x" * MAX_MATCH_INPUT + "needle"
    assert not holds(leaf("text", "matches", "needle"), {"text": long_text})
    assert holds(leaf("text", "matches", "needle"), {"text": long_text[-MAX_MATCH_INPUT:]})


def test_regex_is_compiled_once_at_parse_time(monkeypatch: pytest.MonkeyPatch) -> None:
    condition = parse_condition(leaf("title", "matches", "Disk"))

    def refuse(*_: object, **__: object) -> None:
        raise AssertionError("compiled again")

    monkeypatch.setattr(re2, "compile", refuse)  # what libs/events/conditions.py compiles with
    assert all(evaluate(condition, TICKET) for _ in range(3))


@pytest.mark.parametrize(
    ("op", "threshold", "expected"),
    [("gt", 2, True), ("gt", 3, False), ("gte", 3, True), ("lt", 3, False), ("lte", 3.0, True)],
)
def test_ordering_ops_compare_numbers(op: str, threshold: float, expected: bool) -> None:
    assert holds(leaf("fields.replicas", op, threshold), TICKET) is expected


def test_durations_compare_as_seconds() -> None:
    assert holds(leaf("waiting", "gt", "90m"), TICKET)
    assert not holds(leaf("waiting", "gt", "1d"), TICKET)
    assert holds(leaf("elapsed", "gte", "15m"), {"elapsed": 900})


def test_ordering_ops_are_false_for_values_that_are_not_numbers() -> None:
    assert not holds(leaf("priority", "gt", 1), TICKET)
    assert not holds(leaf("fields.urgent", "gte", 0), TICKET)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30), ("15m", 900), ("2h", 7200), ("1d", 86400), ("1w", 604800), ("1h30m", 5400)],
)
def test_duration_strings_are_read_as_seconds(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "15", "m", "2 hours", "1.5h", "30m1h", "-5m"])
def test_strings_that_are_not_durations_are_refused(text: str) -> None:
    assert parse_duration(text) is None


def test_exists_tells_present_from_missing_and_null() -> None:
    assert holds(leaf("fields.environment", "exists", True), TICKET)
    assert holds(leaf("fields.note", "exists", False), TICKET)
    assert holds(leaf("fields.absent", "exists", False), TICKET)
    assert not holds(leaf("fields.absent", "exists", True), TICKET)


@pytest.mark.parametrize(
    ("op", "value", "expected"),
    [
        ("eq", "x", False),
        ("ne", "x", True),
        ("in", ["x"], False),
        ("not_in", ["x"], True),
        ("contains", "x", False),
        ("matches", "x", False),
        ("gt", 0, False),
        ("lte", "1h", False),
        ("exists", True, False),
        ("exists", False, True),
    ],
)
def test_a_missing_path_is_false_except_for_ne_not_in_and_exists_false(
    op: str, value: Any, expected: bool
) -> None:
    assert holds(leaf("fields.nowhere", op, value), TICKET) is expected
    assert holds(leaf("priority.below_a_string", op, value), TICKET) is expected


# --- nesting -------------------------------------------------------------------------------


def test_all_any_and_not_combine_conditions() -> None:
    production = leaf("fields.environment", "eq", "production")
    low = leaf("priority", "eq", "low")
    assert holds({"all": [production, {"not": low}]}, TICKET)
    assert not holds({"all": [production, low]}, TICKET)
    assert holds({"any": [low, production]}, TICKET)
    assert not holds({"any": [low, {"not": production}]}, TICKET)


def test_nesting_up_to_the_limit_is_accepted() -> None:
    assert holds(nested_not(MAX_DEPTH), {"a": 2}) is (MAX_DEPTH % 2 == 0)


def test_nesting_beyond_the_limit_is_rejected() -> None:
    with pytest.raises(ValidationError, match=f"at most {MAX_DEPTH} levels deep"):
        parse_condition(nested_not(MAX_DEPTH + 1))


def test_hostile_deep_nesting_is_rejected_without_recursing() -> None:
    with pytest.raises(ValidationError, match="levels deep"):
        parse_condition(nested_not(100_000))


def test_programmatic_conditions_are_depth_checked_too() -> None:
    inner = parse_condition(nested_not(MAX_DEPTH))
    with pytest.raises(ValidationError, match="levels deep"):
        AllOf.model_validate({"all": [inner]})


def test_conditions_can_be_built_in_code() -> None:
    condition = NotOf(not_=Leaf(field="priority", op="eq", value="low"))
    assert evaluate(condition, TICKET)
    assert dump_condition(condition) == {"not": leaf("priority", "eq", "low")}


# --- failure paths -------------------------------------------------------------------------


def test_regex_longer_than_limit_is_rejected() -> None:
    with pytest.raises(ValidationError, match=f"longer than {MAX_PATTERN_LENGTH}"):
        parse_condition(leaf("title", "matches", "a" * (MAX_PATTERN_LENGTH + 1)))


@pytest.mark.parametrize(
    ("condition", "problem"),
    [
        (leaf("title", "matches", "(unclosed"), "not a valid regular expression"),
        (leaf("title", "matches", 5), "takes a regular expression string"),
        (leaf("priority", "regex", "x"), "Input should be 'eq'"),
        (leaf("priority", "in", "high"), "takes a list"),
        (leaf("priority", "in", []), "takes a list"),
        (leaf("priority", "in", [{"a": 1}]), "strings, numbers or booleans"),
        (leaf("priority", "contains", ["a"]), "takes a string, number or boolean"),
        (leaf("waiting", "gt", "soon"), "takes a number or a duration"),
        (leaf("waiting", "gt", True), "takes a number or a duration"),
        (leaf("priority", "exists", "yes"), "takes value true or false"),
        (leaf("priority", "eq", None), "use op 'exists'"),
        (leaf("not a path", "eq", 1), "dotted path"),
        (leaf("fields..x", "eq", 1), "dotted path"),
        ({"field": "priority", "op": "eq"}, "Field required"),
        ({**leaf("priority", "eq", "x"), "extra": 1}, "Extra inputs are not permitted"),
        ({"all": []}, "at least 1 item"),
        ({"any": "nope"}, "valid list"),
        ({"not": 5}, "a condition must be an object"),
        ("priority == high", "a condition must be an object"),
    ],
)
def test_malformed_conditions_are_rejected_with_the_reason(condition: object, problem: str) -> None:
    with pytest.raises(ValueError, match=re.escape(problem)):
        parse_condition(condition)


def test_an_error_deep_inside_names_where_it_is() -> None:
    with pytest.raises(ValidationError) as caught:
        parse_condition({"all": [leaf("a", "eq", 1), {"not": leaf("b", "bogus", 1)}]})
    assert [error["loc"] for error in caught.value.errors()] == [
        ("all", "all", 1, "not", "not", "leaf", "op")
    ]


# --- inspection ----------------------------------------------------------------------------


def test_referenced_fields_lists_every_path_read() -> None:
    condition = parse_condition(
        {
            "any": [
                leaf("fields.environment", "eq", "production"),
                {"not": {"all": [leaf("tags", "contains", "db"), leaf("priority", "ne", "low")]}},
            ]
        }
    )
    assert referenced_fields(condition) == {"fields.environment", "tags", "priority"}


def test_dumped_conditions_parse_back_to_the_same_condition() -> None:
    document = {
        "all": [
            leaf("waiting", "gte", "15m"),
            {"not": {"any": [leaf("tags", "in", ["a", "b"]), leaf("title", "matches", "^x")]}},
        ]
    }
    condition = parse_condition(document)
    assert dump_condition(condition) == document
    assert parse_condition(dump_condition(condition)) == condition
