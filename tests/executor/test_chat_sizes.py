"""Sizes: a message that renders past 4,000 characters (ticket data fills it) is cut by each
chat action to its service's limit, not refused; a cut never splits a flag or ends on a
joiner; the Teams limit is counted in UTF-8 bytes."""

from __future__ import annotations

import json
import unicodedata
from types import SimpleNamespace
from typing import Any

from libs.contracts.rules import OutgoingParams
from services.executor.actions import StepFailed, prepare, teams
from services.executor.actions.chat_text import ELLIPSIS, cut


def values(details: str) -> dict[str, Any]:
    return {
        "ticket": {"key": "OPS-1", "title": "API is down", "fields": {"details": details}},
        "rule": {"id": "r-1", "version": 1, "name": "notify"},
        "job": {"id": "j"},
    }


def test_a_message_that_renders_long_is_cut_not_refused() -> None:
    """A requester fills a text field with 5,000 characters (a ticket field may hold 20,000):
    `message: "{{ ticket.fields.details }}"` renders past MAX_TEMPLATE and `prepare` refuses
    the params, so the chat step (and every later step of the job) dead-letters, although each
    chat action cuts its text to the service's limit (discord 4,096, mattermost 16,000, teams
    20,000: code that can never run)."""
    raw = {"webhook_id": "w-1", "message": "{{ ticket.fields.details }}"}
    for kind in ("slack", "discord", "teams", "mattermost"):
        try:
            params = prepare(kind, raw, values("x" * 5_000))
        except StepFailed as failed:
            raise AssertionError(f"{kind}: {failed.message}") from None
        assert isinstance(params, OutgoingParams)


def test_a_cut_never_splits_a_flag() -> None:
    """`cut` keeps code points whole but not grapheme clusters: a flag (two regional indicators)
    cut in half shows as a lone letter box before the ellipsis."""
    flags = "\U0001f1fa\U0001f1f8" * 10  # 🇺🇸 x 10
    short = cut("a" + flags, 7)
    body = short.removesuffix(ELLIPSIS)
    indicators = sum(1 for ch in body if 0x1F1E6 <= ord(ch) <= 0x1F1FF)
    assert indicators % 2 == 0, [unicodedata.name(ch, hex(ord(ch))) for ch in body]


def test_a_cut_never_ends_on_a_zero_width_joiner() -> None:
    family = "\U0001f468\u200d\U0001f469\u200d\U0001f467"  # 👨‍👩‍👧
    short = cut(family * 5, 3)
    assert not short.removesuffix(ELLIPSIS).endswith("\u200d")


def test_the_teams_text_limit_is_in_bytes() -> None:
    """Latent while MAX_TEMPLATE caps the message at 4,000 characters, real once it is lifted
    (see the first test): TEXT_LIMIT counts 20,000 *characters*, so 20,000 emoji are ~80 KB of
    JSON, nearly three times what a Teams message may be (~28 KB)."""
    message = "\U0001f525" * 20_000
    params = OutgoingParams.model_construct(webhook_id="w-1", message=message, body=None)
    context = SimpleNamespace(values=values(""))
    raw = json.dumps(teams.payload(params, context), ensure_ascii=False).encode()  # type: ignore[arg-type]
    assert len(raw) <= 28 * 1024, len(raw)
