"""A rendered text that cannot be encoded as UTF-8 (a lone surrogate, which jinja's string
literals can spell: `{{ "\\ud800" }}`) fails the step once, clearly: in `message` the params'
validation refuses it; in a `body` the sender does, where it encodes the payload."""

from __future__ import annotations

from typing import Any

import pytest

from tests.executor.receiver import Receiver
from tests.executor.stack import Stack

LONE = '{{ ticket.key }} {{ "\\ud800" }}'


@pytest.mark.parametrize(
    "params",
    [
        pytest.param({"message": LONE}, id="message-held-up"),
        pytest.param({"body": {"text": LONE}}, id="body"),
    ],
)
async def test_a_lone_surrogate_fails_the_step_once_and_clearly(
    stack: Stack, receiver: Receiver, params: dict[str, Any]
) -> None:
    key = await stack.ticket()
    webhook_id = await stack.webhook(receiver.url, kind="slack")
    action = {"type": "slack", "params": {"webhook_id": webhook_id, **params}}
    job = await stack.settled(await stack.queue([action], ticket=key))
    assert receiver.received == []
    assert job["state"] == "dead_lettered"
    assert job["attempts"] == 1, (job["attempts"], job["last_error"])  # no retry mends it
    assert "UnicodeEncodeError" not in job["last_error"], job["last_error"]
