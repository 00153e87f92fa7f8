"""slack `{webhook_id, message?|body?}`: a Slack incoming webhook message in Block Kit.

The payload is `text` (the notification's fallback) and `blocks`: a `section` with the message
as mrkdwn and a `context` naming the rule and the ticket. `&`, `<` and `>` are escaped as Slack's
docs require, so text from a ticket can never become a link or an `<!channel>` ping. A `body`
is sent as given (a payload of your own). Approve/reject buttons arrive with approvals."""

from __future__ import annotations

from typing import Any, Final

from libs.contracts.rules import OutgoingParams
from services.executor.actions.base import Action, ActionContext
from services.executor.actions.chat_text import ELLIPSIS, cut, summary, text_of
from services.executor.actions.outgoing import post

SECTION_LIMIT: Final = 3_000
"""Characters of a section block's text (Block Kit)."""
TEXT_LIMIT: Final = 40_000
"""Characters of a message's top-level `text`."""


def escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def cut_escaped(text: str, limit: int) -> str:
    """`cut`, never inside an entity that `escape` wrote (`&amp;` cut to `&am…` would show)."""
    short = cut(text, limit)
    if short == text:
        return text
    body = short[: -len(ELLIPSIS)]
    amp = body.rfind("&", max(0, len(body) - 4))
    if amp != -1 and ";" not in body[amp:]:
        body = body[:amp]
    return body + ELLIPSIS


def payload(params: OutgoingParams, context: ActionContext) -> Any:
    if params.body is not None:
        return params.body
    text = escape(text_of(params, context))
    return {
        "text": cut_escaped(text, TEXT_LIMIT),
        "blocks": [
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": cut_escaped(text, SECTION_LIMIT)},
            },
            {
                "type": "context",
                "elements": [{"type": "mrkdwn", "text": escape(summary(context.values))}],
            },
        ],
    }


async def run(params: OutgoingParams, context: ActionContext) -> dict[str, Any]:
    return await post(params.webhook_id, payload(params, context), context, kind="slack")


ACTION = Action(params=OutgoingParams, run=run)
