"""Rules as code: `opsledger rules export` writes every rule as YAML; `opsledger rules apply -f
FILE [--dry-run]` plans (create / change / unchanged) and makes the log match the file.

A file is `rules: [{id, name, enabled, trigger, ...}]`, each entry a rule as `POST /rules`
takes it plus its `id`. It is checked whole before anything is written: a YAML error, a missing
or repeated id, or any rule error refuses the file, each error with its line. Applying is
idempotent: an entry equal to its rule writes nothing, so the same file twice makes no version.
Rules the file does not name are left as they are."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final, Literal

import yaml

from libs.contracts.rules import RULE_ID, RuleDefinition
from libs.events.envelope import Actor, Metadata
from libs.events.registry import DomainEvent
from libs.events.runtime import Deps
from services.rules import domain, queries
from services.rules.handlers import Decide, RuleCommands
from services.rules.refusals import InvalidRule
from services.rules.validation import validate_rule

HEADER: Final = (
    "# OpsLedger rules: `opsledger rules apply -f <this file>` makes the rules match it\n"
)
EXPORT_KEYS: Final = ("id", "name", "enabled", "mode", "trigger", "conditions", "actions")
_TOKEN = re.compile(r"[^.\[\]]+|\[\d+\]")


@dataclass(frozen=True)
class Problem:
    line: int
    path: str
    message: str

    def __str__(self) -> str:
        return (
            f"line {self.line}: {self.path}: {self.message}"
            if self.path
            else f"line {self.line}: {self.message}"
        )


class InvalidFile(Exception):
    """The file is refused as a whole; nothing was written."""

    def __init__(self, source: str, problems: list[Problem]) -> None:
        lines = "\n".join(f"{source}:{p}" for p in problems)
        super().__init__(f"{source} is not applied ({len(problems)} error(s)):\n{lines}")
        self.problems = problems


@dataclass(frozen=True)
class Step:
    action: Literal["create", "change", "unchanged"]
    rule_id: str
    name: str
    changed: tuple[str, ...] = ()


@dataclass(frozen=True)
class Plan:
    steps: list[Step]
    applied: bool

    def report(self) -> str:
        rows = []
        for step in self.steps:
            what = f" ({', '.join(step.changed)})" if step.changed else ""
            rows.append(f"{step.action:<10} {step.rule_id}  {step.name!r}{what}")
        counts = {
            a: sum(s.action == a for s in self.steps) for a in ("create", "change", "unchanged")
        }
        said = "applied" if self.applied else "dry run: nothing written"
        rows.append(
            f"{counts['create']} to create, {counts['change']} to change, "
            f"{counts['unchanged']} unchanged ({said})"
        )
        return "\n".join(rows)


async def export(deps: Deps) -> str:
    """Every rule that is not archived, by id, as the YAML `apply` reads."""
    found, after = [], None
    while page := await queries.rules(deps.pool, after=after, limit=500):
        found.extend(page)
        after = page[-1].id
    entries = []
    for rule in found:
        dumped = rule.model_dump(mode="json", by_alias=True)
        keys = [*EXPORT_KEYS, *(k for k in dumped if k not in EXPORT_KEYS)]
        entries.append(
            {k: dumped[k] for k in keys if k not in ("version", "created_at", "updated_at")}
        )
    dumped_file: str = yaml.safe_dump({"rules": entries}, sort_keys=False, allow_unicode=True)
    return HEADER + dumped_file


def parse(text: str, source: str = "rules.yaml") -> list[tuple[str, RuleDefinition]]:
    """The file's (id, checked definition) entries; raises InvalidFile listing every error."""
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
        data = loader.construct_document(root) if root is not None else None
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else 1
        raise InvalidFile(source, [Problem(line, "", f"not YAML: {exc.problem}")]) from None
    except yaml.YAMLError as exc:
        raise InvalidFile(source, [Problem(1, "", f"not YAML: {exc}")]) from None
    finally:
        loader.dispose()
    entries = data.get("rules") if isinstance(data, dict) else None
    if root is None or not isinstance(entries, list):
        raise InvalidFile(
            source, [Problem(1, "", "the file must be a mapping with a list `rules`")]
        )
    nodes = _child(root, "rules")
    problems: list[Problem] = []
    parsed: list[tuple[str, RuleDefinition]] = []
    seen: dict[str, int] = {}
    for index, entry in enumerate(entries):
        node = nodes.value[index] if isinstance(nodes, yaml.SequenceNode) else root
        where = f"rules[{index}]"
        if not isinstance(entry, dict):
            problems.append(Problem(_line(node), where, "a rule is a mapping"))
            continue
        rule_id = entry.get("id")
        if not isinstance(rule_id, str) or not re.match(RULE_ID, rule_id):
            problems.append(
                Problem(_line(node, "id"), f"{where}.id", f"needs an id matching {RULE_ID}")
            )
        elif rule_id in seen:
            message = f"repeats the id of the rule on line {seen[rule_id]}"
            problems.append(Problem(_line(node, "id"), f"{where}.id", message))
        else:
            seen[rule_id] = _line(node)
        try:
            definition = validate_rule({k: v for k, v in entry.items() if k != "id"})
        except InvalidRule as invalid:
            for error in invalid.errors:
                path = f"{where}.{error.path}" if error.path != "rule" else where
                problems.append(Problem(_line(node, error.path), path, error.message))
            continue
        if isinstance(rule_id, str):
            parsed.append((rule_id, definition))
    if problems:
        raise InvalidFile(source, problems)
    return parsed


async def apply(deps: Deps, text: str, *, source: str = "rules.yaml", dry_run: bool) -> Plan:
    """The plan for the file, carried out unless `dry_run`; raises InvalidFile (nothing written)."""
    entries = parse(text, source)
    commands = RuleCommands(deps)
    steps, problems = [], []
    for index, (rule_id, definition) in enumerate(entries):
        state, _ = await commands.load(rule_id)
        if state is not None and state.archived:
            message = f"rule {rule_id} is archived and can no longer change; give it a new id"
            problems.append(Problem(1, f"rules[{index}].id", message))
            continue
        steps.append(_step(rule_id, definition, state))
    if problems:
        raise InvalidFile(source, problems)
    if not dry_run:
        meta = Metadata(actor=Actor.system(), service="rules")
        for step, (rule_id, definition) in zip(steps, entries, strict=True):
            if step.action != "unchanged":
                await commands.run(rule_id, _writer(rule_id, definition), meta=meta)
    return Plan(steps, applied=not dry_run)


def _writer(rule_id: str, definition: RuleDefinition) -> Decide:
    """Create the rule, or revise it to `definition`: decided again against its stream as it is
    when written."""
    by = "opsledger rules apply"

    def decide(state: domain.RuleState | None) -> list[DomainEvent]:
        if state is None:
            return domain.decide_create(state, rule_id=rule_id, definition=definition, by=by)
        return domain.decide_revise(state, definition=definition, by=by)

    return decide


def _step(rule_id: str, definition: RuleDefinition, state: domain.RuleState | None) -> Step:
    if state is None:
        return Step("create", rule_id, definition.name)
    now = {**domain.body_json(state.body), "enabled": state.enabled}
    wanted = {**domain.body_json(definition), "enabled": definition.enabled}
    changed = tuple(k for k in wanted if wanted[k] != now.get(k))
    return Step("change" if changed else "unchanged", rule_id, definition.name, changed)


def _child(node: yaml.Node, key: str) -> yaml.Node | None:
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            if getattr(key_node, "value", None) == key and isinstance(value_node, yaml.Node):
                return value_node
    return None


def _line(node: yaml.Node, path: str = "") -> int:
    """The line of what `path` (`actions[0].params.tag`) names below `node`, or of the deepest
    part of it the file has (a missing key is reported where its mapping is)."""
    for token in _TOKEN.findall(path):
        found: yaml.Node | None = None
        if token.startswith("[") and isinstance(node, yaml.SequenceNode):
            index = int(token[1:-1])
            found = node.value[index] if index < len(node.value) else None
        elif not token.startswith("["):
            found = _child(node, token)
        if found is None:
            break
        node = found
    return int(node.start_mark.line) + 1
