"""The chat actions over real HTTP: each posts the payload its service documents (Slack Block
Kit, a Discord embed, a Teams Adaptive Card, a Mattermost post) to a local endpoint that
refuses, with a 400 as the real one would, a payload not of that shape; text from a ticket never
pings a channel; an endpoint of another kind is refused without a request; a 5xx is retried."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from tests.executor.receiver import Receiver
from tests.executor.stack import Stack

NOISY = "{{ ticket.key }} <!channel> @channel & @everyone <@U123> needs a look"


def slack_ok(body: bytes) -> bool:
    """Block Kit, as api.slack.com documents an incoming webhook message."""
    doc = json.loads(body)
    blocks = doc.get("blocks")
    if not isinstance(doc.get("text"), str) or not 0 < len(doc["text"]) <= 40_000:
        return False
    if not isinstance(blocks, list) or not 0 < len(blocks) <= 50:
        return False
    for block in blocks:
        if block.get("type") == "section":
            text = block.get("text", {})
            if text.get("type") not in ("mrkdwn", "plain_text"):
                return False
            if not 0 < len(text.get("text", "")) <= 3_000:
                return False
        elif block.get("type") == "context":
            elements = block.get("elements")
            if not isinstance(elements, list) or not 0 < len(elements) <= 10:
                return False
            if any(e.get("type") not in ("mrkdwn", "plain_text", "image") for e in elements):
                return False
        else:
            return False
    return True


def discord_ok(body: bytes) -> bool:
    """An execute-webhook body as discord.com documents it: content or embeds, within limits."""
    doc = json.loads(body)
    embeds = doc.get("embeds", [])
    if not doc.get("content") and not embeds:
        return False
    if not isinstance(embeds, list) or len(embeds) > 10:
        return False
    total = 0
    for embed in embeds:
        title, description = embed.get("title", ""), embed.get("description", "")
        if len(title) > 256 or len(description) > 4_096:
            return False
        if "color" in embed and not isinstance(embed["color"], int):
            return False
        total += len(title) + len(description)
    return total <= 6_000


def teams_ok(body: bytes) -> bool:
    """A Teams incoming webhook message with an Adaptive Card attachment."""
    doc = json.loads(body)
    if doc.get("type") != "message" or not isinstance(doc.get("attachments"), list):
        return False
    for attachment in doc["attachments"]:
        card = attachment.get("content", {})
        if attachment.get("contentType") != "application/vnd.microsoft.card.adaptive":
            return False
        if card.get("type") != "AdaptiveCard" or not str(card.get("version", "")).startswith("1."):
            return False
        parts = card.get("body")
        if not isinstance(parts, list) or not parts:
            return False
        if any(p.get("type") != "TextBlock" or not p.get("text") for p in parts):
            return False
    return True


def mattermost_ok(body: bytes) -> bool:
    """A Mattermost incoming webhook post: `text` (or attachments), within the post's limit."""
    doc = json.loads(body)
    return isinstance(doc.get("text"), str) and 0 < len(doc["text"]) <= 16_383


SHAPES: dict[str, Callable[[bytes], bool]] = {
    "slack": slack_ok,
    "discord": discord_ok,
    "teams": teams_ok,
    "mattermost": mattermost_ok,
}


def chat(kind: str, webhook_id: str, **params: Any) -> dict[str, Any]:
    return {"type": kind, "params": {"webhook_id": webhook_id, **params}}


@pytest.mark.parametrize("kind", list(SHAPES))
async def test_each_chat_action_posts_its_services_shape(
    stack: Stack, receiver: Receiver, kind: str
) -> None:
    receiver.accepts = SHAPES[kind]
    key = await stack.ticket()
    webhook_id = await stack.webhook(receiver.url, kind=kind, secret=None)
    job_id = await stack.queue([chat(kind, webhook_id, message=NOISY)], ticket=key)
    job = await stack.settled(job_id)
    assert job["state"] == "succeeded", job["last_error"]
    [got] = receiver.received
    assert got.headers["idempotency-key"] == job_id
    assert key in got.body.decode()


async def test_text_from_a_ticket_never_pings_a_channel(stack: Stack, receiver: Receiver) -> None:
    key = await stack.ticket()
    sent: dict[str, Any] = {}
    for kind in SHAPES:
        webhook_id = await stack.webhook(receiver.url, kind=kind)
        job_id = await stack.queue([chat(kind, webhook_id, message=NOISY)], ticket=key)
        assert (await stack.settled(job_id))["state"] == "succeeded"
        sent[kind] = json.loads(receiver.received[-1].body)
    slack_text = sent["slack"]["blocks"][0]["text"]["text"]
    assert "<!channel>" not in slack_text and "&lt;!channel&gt;" in slack_text
    assert "<@U123>" not in slack_text and "&amp;" in slack_text
    assert sent["discord"]["allowed_mentions"] == {"parse": []}
    post = sent["mattermost"]["text"]
    assert "@channel" not in post and "@\u200bchannel" in post


async def test_a_long_message_is_cut_to_the_services_limit(
    stack: Stack, receiver: Receiver
) -> None:
    """A message may render to 4,000 characters; a Slack section holds 3,000 (escaping can make
    it longer still), so the section is cut and the fallback text keeps it whole."""
    receiver.accepts = SHAPES["slack"]
    key = await stack.ticket()
    webhook_id = await stack.webhook(receiver.url, kind="slack")
    long = "&" * 3_900
    job_id = await stack.queue([chat("slack", webhook_id, message=long)], ticket=key)
    assert (await stack.settled(job_id))["state"] == "succeeded"
    [got] = receiver.received
    slack = json.loads(got.body)
    section = slack["blocks"][0]["text"]["text"]
    assert 2_990 <= len(section) <= 3_000 and section == "&amp;" * 599 + "…"
    assert slack["text"] == "&amp;" * 3_900


async def test_an_endpoint_of_another_kind_is_refused_without_a_request(
    stack: Stack, receiver: Receiver
) -> None:
    key = await stack.ticket()
    discord_hook = await stack.webhook(receiver.url, kind="discord")
    job_id = await stack.queue([chat("slack", discord_hook, message="hi")], ticket=key)
    job = await stack.settled(job_id)
    assert job["state"] == "dead_lettered" and job["attempts"] == 1
    assert "registered as a discord endpoint" in job["last_error"]
    assert receiver.received == []


async def test_a_chat_endpoint_that_fails_is_retried(stack: Stack, receiver: Receiver) -> None:
    receiver.statuses = [503, 200]
    receiver.accepts = SHAPES["teams"]
    key = await stack.ticket()
    webhook_id = await stack.webhook(receiver.url, kind="teams")
    job_id = await stack.queue([chat("teams", webhook_id)], ticket=key)
    job = await stack.settled(job_id)
    assert job["state"] == "succeeded" and job["attempts"] == 2
    first, second = (json.loads(r.body) for r in receiver.received)
    assert first == second  # the same card on every attempt
    heading = second["attachments"][0]["content"]["body"][0]["text"]
    assert heading.startswith("OpsLedger · ") and key in heading
