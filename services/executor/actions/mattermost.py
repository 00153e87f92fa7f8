"""mattermost `{webhook_id, message?|body?}`: a Mattermost incoming webhook post (`text` and
the `username` it is shown under). Mattermost has no switch for mentions, so every `@` in the
text is followed by a zero-width space (text from a ticket never notifies a user, a group or a
whole channel), and its Markdown is escaped (never a masked link, nor an image every reader's
client would load). A `body` is sent as given."""

from __future__ import annotations

from typing import Any, Final

from libs.contracts.rules import OutgoingParams
from services.executor.actions.base import Action, ActionContext
from services.executor.actions.chat_text import cut, plain_markdown, text_of
from services.executor.actions.outgoing import post

TEXT_LIMIT: Final = 16_000
"""Characters of a post (Mattermost's limit is 16,383)."""


def quiet(text: str) -> str:
    """`text` with no mention left: each `@` is followed by a zero-width space."""
    return text.replace("@", "@\u200b")


def payload(params: OutgoingParams, context: ActionContext) -> Any:
    if params.body is not None:
        return params.body
    text = quiet(plain_markdown(text_of(params, context)))
    return {"username": "OpsLedger", "text": cut(text, TEXT_LIMIT)}


async def run(params: OutgoingParams, context: ActionContext) -> dict[str, Any]:
    return await post(params.webhook_id, payload(params, context), context, kind="mattermost")


ACTION = Action(params=OutgoingParams, run=run)
