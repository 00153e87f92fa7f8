"""discord `{webhook_id, message?|body?}`: a Discord webhook message with one embed.

The embed's `title` is the job's summary and its `description` the message, within Discord's
limits (256 and 4,096 characters), their Markdown escaped (text from a ticket is never a masked
link). `allowed_mentions: {"parse": []}` keeps it from pinging `@everyone`, a role or a user;
a `body` is sent as given but gets that too unless it sets its own. The signed approve/reject
links arrive with approvals."""

from __future__ import annotations

from typing import Any, Final

from libs.contracts.rules import OutgoingParams
from services.executor.actions.base import Action, ActionContext
from services.executor.actions.chat_text import cut, plain_markdown, summary, text_of
from services.executor.actions.outgoing import post

TITLE_LIMIT: Final = 256
DESCRIPTION_LIMIT: Final = 4_096
COLOR: Final = 0x2F6FEB


def payload(params: OutgoingParams, context: ActionContext) -> Any:
    if params.body is not None:
        if isinstance(params.body, dict) and "allowed_mentions" not in params.body:
            return {**params.body, "allowed_mentions": {"parse": []}}
        return params.body
    return {
        "username": "OpsLedger",
        "allowed_mentions": {"parse": []},
        "embeds": [
            {
                "title": cut(plain_markdown(summary(context.values)), TITLE_LIMIT),
                "description": cut(plain_markdown(text_of(params, context)), DESCRIPTION_LIMIT),
                "color": COLOR,
            }
        ],
    }


async def run(params: OutgoingParams, context: ActionContext) -> dict[str, Any]:
    return await post(params.webhook_id, payload(params, context), context, kind="discord")


ACTION = Action(params=OutgoingParams, run=run)
