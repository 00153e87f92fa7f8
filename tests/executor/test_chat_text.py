"""Text from a ticket never pings or links in a chat payload: mentions of users, groups and whole
channels, masked links and images, in every chat service's syntax (pure unit tests of the
payload builders)."""

from __future__ import annotations

import re
from types import SimpleNamespace
from typing import Any

import pytest

from libs.contracts.rules import OutgoingParams
from services.executor.actions import discord, mattermost, slack, teams


def context(title: str = "API is down") -> Any:
    values = {
        "ticket": {"key": "OPS-1", "title": title},
        "rule": {"id": "r-1", "name": "notify"},
        "job": {"id": "j"},
    }
    return SimpleNamespace(values=values)


def params(message: str) -> OutgoingParams:
    return OutgoingParams.model_validate({"webhook_id": "w-1", "message": message})


# Mattermost's mention parser (server app/mention_parser: `processText`) splits words on anything
# but letters, digits and `:.-_@`, then strips trailing `.-:_` one by one, checking each time
# for @here/@channel/@all (case-insensitively). `_` is a word character for Python's `\b`, so
# `@channel_` is left alone by `quiet` but is a channel-wide mention for Mattermost.
def _mattermost_channel_mentions(text: str) -> list[str]:
    found = []
    for word in re.findall(r"[\w:.\-@]+", text):
        candidates = [word.lstrip(":.-_"), *re.split(r"[.\-:]", word)]  # then split on .-:
        for candidate in candidates:
            while candidate:
                if candidate.lower() in ("@channel", "@all", "@here"):
                    found.append(candidate)
                    break
                if candidate[-1] not in ".-:_":
                    break
                candidate = candidate[:-1]
    return found


@pytest.mark.parametrize("noisy", ["@channel_", "@here__ now", "@all_: look", "_@channel_"])
def test_mattermost_quiet_breaks_channel_mentions_with_a_trailing_underscore(noisy: str) -> None:
    assert _mattermost_channel_mentions(noisy), "the oracle itself sees a mention"
    quieted = mattermost.quiet(noisy)
    assert _mattermost_channel_mentions(quieted) == [], quieted


def test_mattermost_post_does_not_auto_load_an_image_from_ticket_text() -> None:
    """`![](url)` in a Mattermost post is fetched by every viewer's client (unless the image
    proxy is on): a requester learns who read the channel, and when, from where."""
    rendered = mattermost.payload(params("OPS-1: ![x](https://evil.example/p.png)"), context())
    assert "![x](https://evil.example/p.png)" not in rendered["text"]


def test_mattermost_post_does_not_ping_a_user_or_group_from_ticket_text() -> None:
    """Slack escapes `<@U..>` and Discord sends parse [], but Mattermost notifies `@alice` or a
    whole user group `@sre-oncall` named in a ticket title."""
    rendered = mattermost.payload(params("OPS-1: ping @sre-oncall and @alice"), context())
    assert re.search(r"@[a-z]", rendered["text"]) is None, rendered["text"]


def test_discord_description_has_no_masked_link_from_ticket_text() -> None:
    """Discord renders `[text](url)` as a masked link in an embed description: a message from
    'OpsLedger' that reads 'Approve the change' and opens an attacker's page."""
    got = discord.payload(params("[Approve the change](https://evil.example/login)"), context())
    assert "](https://evil.example" not in got["embeds"][0]["description"]


def test_teams_textblock_has_no_markdown_link_from_ticket_text() -> None:
    """An Adaptive Card TextBlock renders `[text](url)` as a link."""
    got = teams.payload(params("[Approve the change](https://evil.example/login)"), context())
    text = got["attachments"][0]["content"]["body"][1]["text"]
    assert "](https://evil.example" not in text


def test_slack_summary_and_text_are_escaped() -> None:
    """`<!channel>`, `<!subteam^S1>`, `<@U1>`, `<#C1>` and `<http://x|y>`
    from a title are escaped in the section, the `text` fallback and the context block."""
    title = "<!channel> <!here> <!subteam^S1> <@U1> <#C1> <http://evil|click>"
    got = slack.payload(params(title), context(title))
    texts = [got["text"], got["blocks"][0]["text"]["text"], got["blocks"][1]["elements"][0]["text"]]
    for text in texts:
        assert "<" not in text and ">" not in text


@pytest.mark.parametrize("noisy", ["@channel.", "@ChAnNeL", "x.@channel", "@all,", "(@here)"])
def test_mattermost_quiet_breaks_mentions_whatever_the_punctuation_and_case(noisy: str) -> None:
    """Mattermost's parser sees these as mentions; `quiet` breaks them."""
    assert _mattermost_channel_mentions(noisy)
    assert _mattermost_channel_mentions(mattermost.quiet(noisy)) == []


def test_discord_body_keeps_allowed_mentions() -> None:
    """A `body` is sent as given: an operator's `{"content": "{{ ticket.title }}"}` carries no
    allowed_mentions, so a title with `@everyone` pings the whole server. The one protection
    the discord action has should be added to a body that does not set its own."""
    body = {"content": "@everyone look"}
    got = OutgoingParams.model_validate({"webhook_id": "w-1", "body": body})
    assert discord.payload(got, context()).get("allowed_mentions") == {"parse": []}
