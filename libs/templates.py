"""Text params as templates: checked when a rule is written, rendered in a sandbox when it runs.

Rendering uses jinja2's `SandboxedEnvironment` (never `str.format` on user text) with
`StrictUndefined`, so a missing variable is an error that names it, not an empty string. A
template is a substitution with conditionals, bounded in time and size: no loops, macros, calls,
assignments or imports (refused when checked, and again before rendering); only filters whose
output grows linearly with their input; `*` may not build past the output bound, `%` does not
format strings and `**` is refused; no globals (`range`, `lipsum`); rendering stops at
`MAX_OUTPUT` characters. Every failure is a `TemplateFailed(message)`, which the executor turns
into a failed step.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any, Final

from jinja2 import StrictUndefined, Template, TemplateError, meta, nodes
from jinja2.exceptions import SecurityError
from jinja2.runtime import Context
from jinja2.sandbox import SandboxedEnvironment

MAX_OUTPUT: Final = 32_000
"""Characters one text param (or all strings of a JSON param together) may render to."""
SAFE_FILTERS: Final = frozenset(
    {
        "abs", "capitalize", "count", "d", "default", "dictsort", "e", "escape", "first",
        "float", "int", "items", "join", "last", "length", "list", "lower", "max", "min",
        "reverse", "round", "sort", "string", "striptags", "sum", "title", "tojson", "trim",
        "truncate", "unique", "upper", "urlencode", "wordcount",
    }
)  # fmt: skip
"""Filters kept: each one's output grows at most linearly with its input, and none is random."""
_REFUSED: Final[dict[type[nodes.Node], str]] = {
    nodes.For: "loops ({% for %})",
    nodes.Macro: "macros",
    nodes.CallBlock: "call blocks",
    nodes.Call: "function and method calls (use filters: {{ x | upper }})",
    nodes.Include: "includes",
    nodes.Import: "imports",
    nodes.FromImport: "imports",
    nodes.Extends: "extends",
    nodes.Block: "blocks",
    nodes.FilterBlock: "filter blocks",
    nodes.Pow: "the ** operator",
    # a name bound once can be doubled again and again ({% set a = a ~ a %}): no bindings
    nodes.Assign: "assignments ({% set %})",
    nodes.AssignBlock: "assignments ({% set %})",
    nodes.With: "with blocks",
}


class TemplateFailed(Exception):
    """A template that does not parse, or fails to render; the message says why."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class _Sandbox(SandboxedEnvironment):
    intercepted_binops = frozenset({"*", "%", "**"})

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        if operator == "**":
            raise SecurityError("the ** operator is not allowed in templates")
        if operator == "%" and isinstance(left, str):
            raise SecurityError("'%' formatting is not allowed in templates; use filters")
        if operator == "*":
            for seq, times in ((left, right), (right, left)):
                sized = isinstance(seq, str | list | tuple) and isinstance(times, int)
                if sized and len(seq) * times > MAX_OUTPUT:
                    raise SecurityError(f"'*' would build more than {MAX_OUTPUT} items")
        return super().call_binop(context, operator, left, right)


def _blank_none(value: Any) -> Any:
    return "" if value is None else value


_ENV: Final = _Sandbox(undefined=StrictUndefined, autoescape=False, finalize=_blank_none)
_ENV.globals.clear()
_ENV.filters = {name: f for name, f in _ENV.filters.items() if name in SAFE_FILTERS}


def _refusal(tree: nodes.Template) -> str | None:
    for node in tree.find_all(nodes.Node):
        refused = _REFUSED.get(type(node))
        if refused is not None:
            return f"templates may not use {refused}"
        if isinstance(node, nodes.Getattr) and node.attr.startswith("_"):
            return f"templates may not read attributes starting with '_' ({node.attr!r})"
        key = node.arg if isinstance(node, nodes.Getitem) else None
        if isinstance(key, nodes.Const) and isinstance(key.value, str) and key.value[:1] == "_":
            return f"templates may not read keys starting with '_' ({key.value!r})"
    return None


@functools.lru_cache(maxsize=2048)
def _compiled(text: str) -> tuple[Template, frozenset[str]]:
    """The template and the variables it reads; raises TemplateFailed. Cached by text."""
    try:
        tree = _ENV.parse(text)
        refused = _refusal(tree)
        if refused is not None:
            raise TemplateFailed(refused)
        return _ENV.from_string(tree), frozenset(meta.find_undeclared_variables(tree))
    except TemplateError as exc:
        line = getattr(exc, "lineno", None)
        where = f" (line {line})" if line else ""
        raise TemplateFailed(f"the template does not parse{where}: {exc.message}") from None


def check(text: str, roots: frozenset[str]) -> str | None:
    """Why `text` is not a usable template given the variables `roots` it may read; None if it
    is one."""
    try:
        _, variables = _compiled(text)
    except TemplateFailed as exc:
        return exc.message
    unknown = sorted(variables - roots)
    if unknown:
        known = ", ".join(sorted(roots))
        return f"the template reads unknown variable(s) {', '.join(unknown)} (known: {known})"
    return None


def render(text: str, context: Mapping[str, Any], *, limit: int = MAX_OUTPUT) -> str:
    """`text` rendered over `context`; raises TemplateFailed (never another error)."""
    template, _ = _compiled(text)
    parts: list[str] = []
    size = 0
    try:
        for chunk in template.generate(dict(context)):
            size += len(chunk)
            if size > limit:
                raise TemplateFailed(f"the template renders to more than {limit} characters")
            parts.append(chunk)
    except TemplateFailed:
        raise
    except SecurityError as exc:
        raise TemplateFailed(f"the template did something unsafe: {exc}") from None
    except TemplateError as exc:
        raise TemplateFailed(f"the template failed: {exc.message}") from None
    except Exception as exc:  # a filter over the wrong type: int('x'), sum of strings, ...
        raise TemplateFailed(f"the template failed: {type(exc).__name__}: {exc}") from None
    return "".join(parts)


def render_json(value: Any, context: Mapping[str, Any], *, limit: int = MAX_OUTPUT) -> Any:
    """`value` with every string in it rendered (a webhook body, runbook params); all strings
    together render to at most `limit` characters."""
    budget = [limit]

    def walk(node: Any) -> Any:
        if isinstance(node, str):
            rendered = render(node, context, limit=budget[0])
            budget[0] -= len(rendered)
            return rendered
        if isinstance(node, list):
            return [walk(item) for item in node]
        if isinstance(node, dict):
            return {key: walk(item) for key, item in node.items()}
        return node

    return walk(value)


def texts(value: Any, path: str) -> list[tuple[str, str]]:
    """Every string in a JSON value with its path (`body.blocks[0].text`), for checking."""
    if isinstance(value, str):
        return [(path, value)]
    if isinstance(value, list):
        return [found for i, item in enumerate(value) for found in texts(item, f"{path}[{i}]")]
    if isinstance(value, dict):
        return [found for key, item in value.items() for found in texts(item, f"{path}.{key}")]
    return []
