"""mattermost `{webhook_id, message?|body?}`: a Mattermost incoming webhook post (`text`,
Markdown, and the `username` it is shown under). Mattermost has no switch for mentions, so
`@channel`, `@all` and `@here` in the text are broken with a zero-width space: text from a
ticket never notifies a whole channel. A `body` is sent as given."""

from __future__ import annotations

import re
from typing import Any, Final

from libs.contracts.rules import OutgoingParams
from services.executor.actions.base import Action, ActionContext
from services.executor.actions.chat_text import cut, text_of
from services.executor.actions.outgoing import post

TEXT_LIMIT: Final = 16_000
"""Characters of a post (Mattermost's limit is 16,383)."""
_CHANNEL_MENTION: Final = re.compile(r"@(channel|all|here)\b", re.IGNORECASE)


def quiet(text: str) -> str:
    return _CHANNEL_MENTION.sub(lambda m: "@\u200b" + m.group(1), text)


def payload(params: OutgoingParams, context: ActionContext) -> Any:
    if params.body is not None:
        return params.body
    return {"username": "OpsLedger", "text": cut(quiet(text_of(params, context)), TEXT_LIMIT)}


async def run(params: OutgoingParams, context: ActionContext) -> dict[str, Any]:
    return await post(params.webhook_id, payload(params, context), context, kind="mattermost")


ACTION = Action(params=OutgoingParams, run=run)
