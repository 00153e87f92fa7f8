"""teams `{webhook_id, message?|body?}`: a Microsoft Teams incoming webhook message carrying an
Adaptive Card (schema 1.4): the job's summary as a bold heading, then the message, wrapped,
within Teams' size limit (counted in UTF-8 bytes). A TextBlock renders `[text](url)` as a link
and knows no escape for it, so `](` is broken with a zero-width space: text from a ticket is
never a masked link. A `body` is sent as given."""

from __future__ import annotations

from typing import Any, Final

from libs.contracts.rules import OutgoingParams
from services.executor.actions.base import Action, ActionContext
from services.executor.actions.chat_text import cut, cut_bytes, summary, text_of
from services.executor.actions.outgoing import post

CARD_TYPE: Final = "application/vnd.microsoft.card.adaptive"
CARD_SCHEMA: Final = "http://adaptivecards.io/schemas/adaptive-card.json"
TEXT_LIMIT_BYTES: Final = 20_000
"""UTF-8 bytes of the message (a Teams message is at most about 28 KB)."""


def unlinked(text: str) -> str:
    return text.replace("](", "]\u200b(")


def payload(params: OutgoingParams, context: ActionContext) -> Any:
    if params.body is not None:
        return params.body
    card = {
        "$schema": CARD_SCHEMA,
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": [
            {
                "type": "TextBlock",
                "text": cut(unlinked(summary(context.values)), 500),
                "weight": "Bolder",
                "wrap": True,
            },
            {
                "type": "TextBlock",
                "text": cut_bytes(unlinked(text_of(params, context)), TEXT_LIMIT_BYTES),
                "wrap": True,
            },
        ],
    }
    return {
        "type": "message",
        "attachments": [{"contentType": CARD_TYPE, "contentUrl": None, "content": card}],
    }


async def run(params: OutgoingParams, context: ActionContext) -> dict[str, Any]:
    return await post(params.webhook_id, payload(params, context), context, kind="teams")


ACTION = Action(params=OutgoingParams, run=run)
