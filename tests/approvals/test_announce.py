"""An approval request announced to each chat service: the payload is the shape the service
documents, with a signed approve and reject link for each approver that checks out whole (never
a link cut to fit), and none for the ticket's requester."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

from libs.approval_links import check
from libs.events.testing import eventually
from libs.server_secret import resolve_secret
from services.executor.actions.announce import DISCORD_FIELDS_BUDGET, discord_fields
from tests.approvals.support import Gate
from tests.executor.receiver import Receiver
from tests.executor.test_chat import SHAPES
from tests.tickets.support import ADMIN, ALICE, OPERATOR

LINK = re.compile(r"https?://[^\s)\"]+/approve\?[^\s)\"]+")


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    endpoint = await Receiver().start()
    yield endpoint
    await endpoint.stop()


def _links(body: bytes) -> list[str]:
    return LINK.findall(body.decode())


@pytest.mark.parametrize("kind", ["discord", "teams", "mattermost"])
async def test_each_chat_service_gets_its_shape_with_whole_signed_links(
    gate: Gate, receiver: Receiver, kind: str
) -> None:
    receiver.accepts = SHAPES[kind]
    hook = await gate.call(
        "executor",
        "webhooks.create",
        {"name": "ops", "kind": kind, "url": receiver.url, "secret": None},
        by=ADMIN,
    )
    approval = {"approvers": {"roles": ["operator", "admin"]}, "announce": [hook["id"]]}
    await gate.rule(approval=approval)
    key = await gate.deploy(by=ALICE)
    request = await gate.approval_of(key)

    async def posted() -> int:
        return len(receiver.received)

    await eventually(posted, until=lambda n: n >= 1, timeout=30)
    [post] = receiver.received
    assert post.status == 200, f"{kind} refused the payload's shape"
    secret = resolve_secret(gate.deps.settings)
    seen: set[tuple[str, str]] = set()
    for link in _links(post.body):
        checked = check(secret, parse_qsl(urlsplit(link).query))
        assert checked.approval_id == request["id"]
        seen.add((checked.user_id, checked.vote))
    assert seen == {(u.id, v) for u in (OPERATOR, ADMIN) for v in ("approve", "reject")}
    assert ALICE.id not in post.body.decode()


def test_discord_fields_never_cut_a_link_and_send_the_rest_to_the_inbox() -> None:
    url = "https://ops.example.com/approve?" + "x" * 400
    made: list[tuple[str, Any, str]] = [
        (f"user-{i}", vote, f"{url}&n={i}{vote}")
        for i in range(10)
        for vote in ("approve", "reject")
    ]
    fields = discord_fields(made)
    assert fields[-1]["name"] == "More approvers"
    shown = fields[:-1]
    assert shown and sum(len(f["name"]) + len(f["value"]) for f in shown) <= DISCORD_FIELDS_BUDGET
    for field in shown:
        assert len(field["value"]) <= 1024
        for link in re.findall(r"\]\(([^)]+)\)", field["value"]):
            assert link.startswith(url) and link.endswith(("approve", "reject"))
    assert json.dumps(fields)
