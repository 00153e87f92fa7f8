"""The text a chat action posts: the rendered `message`, or a one-line summary of the job; cut
to a chat service's limit, never in the middle of a character."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from libs.contracts.rules import OutgoingParams
from services.executor.actions.base import ActionContext

ELLIPSIS: Final = "…"


def text_of(params: OutgoingParams, context: ActionContext) -> str:
    if params.message is not None:
        return params.message
    return summary(context.values)


def summary(values: Mapping[str, Any]) -> str:
    """`OpsLedger · <rule name> · <ticket key>: <title>`, with what the job has of them."""
    rule = _mapping(values.get("rule"))
    ticket = _mapping(values.get("ticket"))
    parts = ["OpsLedger", str(rule.get("name") or rule.get("id") or "a rule")]
    if ticket.get("key"):
        title = f": {ticket['title']}" if ticket.get("title") else ""
        parts.append(f"{ticket['key']}{title}")
    return " · ".join(parts)


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def cut(text: str, limit: int) -> str:
    """`text`, at most `limit` characters, ending in an ellipsis when it was cut."""
    return text if len(text) <= limit else text[: limit - len(ELLIPSIS)] + ELLIPSIS
