"""announce_approval `{webhook_id}`: post an approval request to a chat endpoint with approve /
reject buttons, one pair per approver, each a signed link (libs/approval_links.py) that decides
as that approver, once, until the request expires.

Not an action a rule names: the executor queues it itself (`executor-announce`, one job per
request announced) so a post that fails is retried and dead-lettered like any other. The
payload is the endpoint kind's own (Slack Block Kit `actions` buttons, a Discord embed with
links, a Teams card's `Action.OpenUrl`, Mattermost Markdown links), built on the same text
rules as the chat actions: nothing from the ticket can ping anyone or become a link."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final

from libs.approval_links import LinkVote, mint
from libs.contracts.rule_definitions import Id
from libs.contracts.rules import ActionParams, OutgoingParams
from libs.events.catalog.executor import WebhookKind
from libs.server_secret import resolve_secret
from services.executor import queries
from services.executor.actions import discord, mattermost, slack, teams
from services.executor.actions.base import Action, ActionContext, StepFailed
from services.executor.actions.chat_text import plain_markdown
from services.executor.actions.outgoing import post

NAME: Final = "announce_approval"
CHAT_KINDS: Final[dict[str, WebhookKind]] = {
    "slack": "slack", "discord": "discord", "teams": "teams", "mattermost": "mattermost",
}  # fmt: skip
MAX_APPROVERS: Final = 10
DISCORD_FIELDS_BUDGET: Final = 4_000
"""Characters of link fields in a Discord embed (6,000 in all, with the title and message)."""
"""Approvers given buttons in one message (Slack takes at most 25 elements in an actions block);
the others decide in the approvals inbox."""


class AnnounceParams(ActionParams):
    webhook_id: Id


def _approval(context: ActionContext) -> Mapping[str, Any]:
    found = context.values.get("approval")
    if not isinstance(found, Mapping) or not found.get("id"):
        raise StepFailed("this job announces no approval request", retryable=False)
    return found


def base_url(context: ActionContext) -> str:
    settings = context.deps.settings
    return settings.public_url or f"http://{settings.host}:{settings.port}"


def links(context: ActionContext) -> list[tuple[str, LinkVote, str]]:
    """(approver, vote, signed link) for each approver given buttons."""
    approval = _approval(context)
    secret = resolve_secret(context.deps.settings)
    expires = datetime.fromisoformat(str(approval["expires_at"]))
    approvers = [str(a) for a in approval.get("approvers", [])][:MAX_APPROVERS]
    made: list[tuple[str, LinkVote, str]] = []
    for user in approvers:
        for vote in ("approve", "reject"):
            chosen: LinkVote = "approve" if vote == "approve" else "reject"
            url = mint(
                secret,
                base_url=base_url(context),
                approval_id=str(approval["id"]),
                vote=chosen,
                user_id=user,
                expires_at=expires,
            )
            made.append((user, chosen, url))
    return made


def message(context: ActionContext) -> str:
    approval = _approval(context)
    ticket = context.values.get("ticket")
    key = ticket.get("key") if isinstance(ticket, Mapping) else None
    on = f" on {key}" if key else ""
    return (
        f"Approval needed{on}: {approval.get('summary', '')}. "
        f"Expires {approval.get('expires_at', '')}."
    )


def _label(user: str, vote: LinkVote) -> str:
    return f"{'Approve' if vote == 'approve' else 'Reject'} as {user}"


def discord_fields(made: list[tuple[str, LinkVote, str]]) -> list[dict[str, Any]]:
    """One embed field per approver, `[Approve](…) · [Reject](…)`, never a link cut: as many
    approvers as fit Discord's 6,000 characters an embed, the rest told to use the inbox."""
    by_user: dict[str, list[str]] = {}
    for user, vote, url in made:
        label = "Approve" if vote == "approve" else "Reject"
        by_user.setdefault(user, []).append(f"[{label}]({url})")
    fields: list[dict[str, Any]] = []
    used = 0
    for user, links in by_user.items():
        field = {"name": plain_markdown(f"as {user}")[:256], "value": " · ".join(links)}
        size = len(field["name"]) + len(field["value"])
        if len(field["value"]) > 1024 or used + size > DISCORD_FIELDS_BUDGET:
            rest = len(by_user) - len(fields)
            fields.append({"name": "More approvers", "value": f"{rest} more: use the inbox"})
            break
        fields.append(field)
        used += size
    return fields


def with_buttons(kind: str, context: ActionContext) -> Any:
    """The endpoint kind's payload for the request, its buttons added."""
    text = OutgoingParams(webhook_id="announce", message=message(context))
    made = links(context)
    if kind == "slack":
        body = slack.payload(text, context)
        buttons = [
            {
                "type": "button",
                "text": {"type": "plain_text", "text": _label(user, vote)[:75]},
                "url": url,
                "style": "primary" if vote == "approve" else "danger",
            }
            for user, vote, url in made
        ]
        if buttons:
            body["blocks"].append({"type": "actions", "elements": buttons})
        return body
    if kind == "discord":
        body = discord.payload(text, context)
        body["embeds"][0]["fields"] = discord_fields(made)
        return body
    if kind == "teams":
        body = teams.payload(text, context)
        actions = [
            {"type": "Action.OpenUrl", "title": _label(user, vote), "url": url}
            for user, vote, url in made
        ]
        body["attachments"][0]["content"]["actions"] = actions
        return body
    if kind == "mattermost":
        body = mattermost.payload(text, context)
        lines = [f"[{plain_markdown(_label(user, vote))}]({url})" for user, vote, url in made]
        body["text"] = body["text"] + ("\n\n" + " · ".join(lines) if lines else "")
        return body
    raise StepFailed(f"a {kind} endpoint cannot show approve/reject buttons", retryable=False)


async def run(params: AnnounceParams, context: ActionContext) -> dict[str, Any]:
    endpoint = await queries.webhook(context.deps.pool, params.webhook_id)
    if endpoint is None or endpoint.removed:
        raise StepFailed(f"there is no webhook {params.webhook_id!r}", retryable=False)
    kind = CHAT_KINDS.get(endpoint.kind)
    if kind is None:
        raise StepFailed(
            f"webhook {params.webhook_id!r} is a {endpoint.kind} endpoint: approval requests are "
            "announced to chat endpoints (slack, discord, teams, mattermost)",
            retryable=False,
        )
    return await post(params.webhook_id, with_buttons(kind, context), context, kind=kind)


ACTION = Action(params=AnnounceParams, run=run)
