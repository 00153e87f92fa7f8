"""The text a chat action posts: the rendered `message`, or a one-line summary of the job; cut
to a chat service's limit (in characters or in UTF-8 bytes), never inside a character or a
flag, and never ending on a joiner; and Markdown neutralised for the services that render it,
so text from a ticket can never become a masked link or an image every reader's client loads."""

from __future__ import annotations

import re
import unicodedata
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


def cut(text: str, limit: int) -> str:
    """`text`, at most `limit` characters, ending in an ellipsis when it was cut."""
    if len(text) <= limit:
        return text
    return _whole(text[: limit - len(ELLIPSIS)]) + ELLIPSIS


def cut_bytes(text: str, limit: int) -> str:
    """`text`, at most `limit` bytes of UTF-8, ending in an ellipsis when it was cut."""
    raw = text.encode("utf-8", "surrogatepass")
    if len(raw) <= limit:
        return text
    room = limit - len(ELLIPSIS.encode())
    kept = raw[:room].decode("utf-8", "ignore")  # a character cut in two is dropped
    return _whole(kept) + ELLIPSIS


_JOINERS: Final = frozenset({"\u200d", "\ufe0e", "\ufe0f"})


def _regional(ch: str) -> bool:
    return 0x1F1E6 <= ord(ch) <= 0x1F1FF


def _whole(text: str) -> str:
    """`text` without a dangling half at its end: a joiner, a variation selector or combining
    mark left over, or one regional indicator of a flag's two."""
    while text and (text[-1] in _JOINERS or unicodedata.combining(text[-1])):
        text = text[:-1]
    indicators = 0
    for ch in reversed(text):
        if not _regional(ch):
            break
        indicators += 1
    return text[:-1] if indicators % 2 else text


_MARKDOWN: Final = re.compile(r"([\\`*_~\[\]()!#>|<])")


def plain_markdown(text: str) -> str:
    """`text` with every Markdown sign backslash-escaped (Discord, Mattermost): shown as typed,
    never a link, an image, a heading or a quote."""
    return _MARKDOWN.sub(r"\\\1", text)


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}
