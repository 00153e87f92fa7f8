"""Over HTTP: a gated request is announced to a chat endpoint with a signed approve / reject
link per approver; a GET of a link only shows a confirmation page, its POST decides as that
approver, once; a changed, expired, reused or no-longer-allowed link is refused with a page
that says why. And the approvals routes themselves."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest

from libs.approval_links import mint
from libs.events.settings import Settings
from libs.events.testing import eventually
from services.approvals.app import SERVICE as APPROVALS
from services.executor.app import SERVICE as EXECUTOR
from services.gateway.app import SERVICE as GATEWAY
from services.people.app import SERVICE as PEOPLE
from services.rules.app import SERVICE as RULES
from services.tickets.app import SERVICE as TICKETS
from tests.approvals.support import DEPLOY_FIELDS, gated_rule
from tests.executor.conftest import FAST
from tests.executor.receiver import Receiver
from tests.gateway.helpers import Gateway, Member, join, running_gateway, signed_in_client


def slack_with_buttons(body: bytes) -> bool:
    """Block Kit with an `actions` block of link buttons, as api.slack.com documents them."""
    doc = json.loads(body)
    blocks = doc.get("blocks")
    if not isinstance(doc.get("text"), str) or not isinstance(blocks, list):
        return False
    for block in blocks:
        kind = block.get("type")
        if kind == "actions":
            elements = block.get("elements")
            if not isinstance(elements, list) or not 0 < len(elements) <= 25:
                return False
            for button in elements:
                text = button.get("text", {})
                if button.get("type") != "button" or text.get("type") != "plain_text":
                    return False
                if not 0 < len(text.get("text", "")) <= 75:
                    return False
                if not str(button.get("url", "")).startswith("http") or len(button["url"]) > 3000:
                    return False
                if button.get("style") not in (None, "primary", "danger"):
                    return False
        elif kind not in ("section", "context"):
            return False
    return True


class Desk:
    def __init__(self, gateway: Gateway, admin: Member, operator: Member, alice: Member) -> None:
        self.gateway, self.admin, self.operator, self.alice = gateway, admin, operator, alice

    def client(self, member: Member | None = None) -> httpx.AsyncClient:
        return signed_in_client(self.gateway, member)

    async def deploy(self) -> str:
        body = {"type": "deployment", "title": "Deploy api 2.0", "fields": DEPLOY_FIELDS}
        made = await self.client(self.alice).post("/api/v1/tickets", json=body)
        assert made.status_code == 201, made.text
        return str(made.json()["key"])

    async def approval_of(self, key: str) -> dict[str, Any]:
        async def probe() -> dict[str, Any] | None:
            page = await self.client(self.admin).get("/api/v1/approvals", params={"ticket": key})
            items = page.json()["items"]
            return items[0] if items else None

        found = await eventually(probe, timeout=20)
        assert found is not None
        return found


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    endpoint = await Receiver().start()
    endpoint.accepts = slack_with_buttons
    yield endpoint
    await endpoint.stop()


@pytest.fixture
async def desk(
    settings: Settings, database_url: str, nats_url: str, receiver: Receiver
) -> AsyncIterator[Desk]:
    fast = settings.model_copy(update=FAST)
    services = (PEOPLE, GATEWAY, TICKETS, RULES, EXECUTOR, APPROVALS)
    async with running_gateway(fast, database_url, nats_url, services=services) as gateway:
        admin = await join(gateway, "admin@example.com", role="admin", admin=None)
        operator = await join(gateway, "operator@example.com", role="operator", admin=admin)
        alice = await join(gateway, "alice@example.com", role="requester", admin=admin)

        async def known() -> int:
            return int(await gateway.deps.pool.fetchval("SELECT count(*) FROM approvals.people"))

        await eventually(known, until=lambda n: n == 3)
        yield Desk(gateway, admin, operator, alice)


async def _announced(desk: Desk, receiver: Receiver, **approval: Any) -> tuple[str, dict[str, str]]:
    """A gated deployment announced to Slack: its key, and the links by (vote, user id)."""
    hook = await desk.client(desk.admin).post(
        "/api/v1/webhooks", json={"name": "ops", "kind": "slack", "url": receiver.url}
    )
    assert hook.status_code == 201, hook.text
    gate = {"approvers": {"roles": ["operator"]}, "quorum": 1, "announce": [hook.json()["id"]]}
    rule = await desk.client(desk.admin).post(
        "/api/v1/rules", json=gated_rule(approval=gate | approval)
    )
    assert rule.status_code == 201, rule.text
    key = await desk.deploy()
    await eventually(lambda: _count(receiver), until=lambda n: n >= 1, timeout=30)
    [post] = receiver.received
    assert post.status == 200, "the announcement is refused by Slack's shape"
    buttons = [b for blk in json.loads(post.body)["blocks"] if blk["type"] == "actions"
               for b in blk["elements"]]  # fmt: skip
    links: dict[str, str] = {}
    for button in buttons:
        query = parse_qs(urlsplit(button["url"]).query)
        links[f"{query['vote'][0]}:{query['user'][0]}"] = button["url"]
    return key, links


async def _count(receiver: Receiver) -> int:
    return len(receiver.received)


def _local(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


async def test_a_link_get_only_confirms_and_its_post_decides_once(
    desk: Desk, receiver: Receiver
) -> None:
    key, links = await _announced(desk, receiver)
    assert set(links) == {f"approve:{desk.operator.id}", f"reject:{desk.operator.id}"}
    link = _local(links[f"approve:{desk.operator.id}"])
    anonymous = desk.client()
    for _ in range(2):  # a link preview, then the approver opening it
        page = await anonymous.get(link)
        assert page.status_code == 200 and "<form method=post>" in page.text
        assert key in page.text
    request = await desk.approval_of(key)
    assert request["status"] == "pending"

    decided = await anonymous.post(link, data={"reason": "looks fine"})
    assert decided.status_code == 200, decided.text
    assert "approved" in decided.text
    request = await desk.approval_of(key)
    assert request["status"] == "approved"
    [vote] = request["decisions"]
    assert vote["user_id"] == desk.operator.id and vote["reason"] == "looks fine"

    again = await anonymous.post(link)
    assert again.status_code == 409
    other = await anonymous.post(_local(links[f"reject:{desk.operator.id}"]))
    assert other.status_code == 409 and len((await desk.approval_of(key))["decisions"]) == 1

    async def unlocked() -> bool:
        shown = await desk.client(desk.admin).get(f"/api/v1/tickets/{key}")
        return shown.json()["locked"] is False and "approved" in shown.json()["tags"]

    assert await eventually(unlocked, timeout=30)


async def test_a_changed_expired_or_unsigned_link_is_refused(
    desk: Desk, receiver: Receiver
) -> None:
    key, links = await _announced(desk, receiver)
    url = links[f"approve:{desk.operator.id}"]
    query = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    anonymous = desk.client()
    for changed in ({"user": desk.admin.id}, {"vote": "reject"}, {"exp": "9999999999"}):
        forged = f"/approve?{urlencode(query | changed)}"
        assert (await anonymous.get(forged)).status_code == 403
        assert (await anonymous.post(forged)).status_code == 403
    unsigned = {k: v for k, v in query.items() if k != "sig"}
    assert (await anonymous.post(f"/approve?{urlencode(unsigned)}")).status_code == 403
    extra = f"/approve?{urlencode(query | {'quorum': '0'})}"
    assert (await anonymous.post(extra)).status_code == 403

    secret: bytes = desk.gateway.app.state.secret
    past = datetime.now(UTC) - timedelta(seconds=5)
    request = await desk.approval_of(key)
    expired = mint(
        secret,
        base_url="http://test",
        approval_id=request["id"],
        vote="approve",
        user_id=desk.operator.id,
        expires_at=past,
    )
    page = await anonymous.post(_local(expired))
    assert page.status_code == 410 and "expired" in page.text
    assert (await desk.approval_of(key))["status"] == "pending"


async def test_a_link_of_someone_no_longer_an_approver_decides_nothing(
    desk: Desk, receiver: Receiver
) -> None:
    key, links = await _announced(desk, receiver)
    demoted = await desk.client(desk.admin).patch(
        f"/api/v1/users/{desk.operator.id}", json={"role": "requester"}
    )
    assert demoted.status_code == 200, demoted.text

    async def role_seen() -> str:
        return str(
            await desk.gateway.deps.pool.fetchval(
                "SELECT role FROM approvals.people WHERE user_id = $1", desk.operator.id
            )
        )

    await eventually(role_seen, until=lambda r: r == "requester")
    link = _local(links[f"approve:{desk.operator.id}"])
    assert (await desk.client().get(link)).status_code == 409
    refused = await desk.client().post(link)
    assert refused.status_code == 403 and "approvers" in refused.text
    assert (await desk.approval_of(key))["status"] == "pending"


async def test_the_approvals_routes_decide_as_the_signed_in_user(
    desk: Desk, receiver: Receiver
) -> None:
    key, _links = await _announced(desk, receiver)
    request = await desk.approval_of(key)
    pending = await desk.client(desk.operator).get("/api/v1/approvals?status=pending")
    assert [a["id"] for a in pending.json()["items"]] == [request["id"]]
    assert (await desk.client(desk.alice).get("/api/v1/approvals")).status_code == 403
    requester = await desk.client(desk.alice).post(f"/api/v1/approvals/{request['id']}/approve")
    assert requester.status_code == 403
    assert requester.json()["error"]["code"] == "NOT_AN_APPROVER"
    rejected = await desk.client(desk.operator).post(
        f"/api/v1/approvals/{request['id']}/reject", json={"reason": "not today"}
    )
    assert rejected.status_code == 200 and rejected.json()["status"] == "rejected"
    again = await desk.client(desk.operator).post(f"/api/v1/approvals/{request['id']}/approve")
    assert again.status_code == 409 and again.json()["error"]["code"] == "ALREADY_DECIDED"
    shown = await desk.client(desk.admin).get(f"/api/v1/approvals/{request['id']}")
    assert shown.json()["decisions"][0]["reason"] == "not today"
    missing = await desk.client(desk.admin).get("/api/v1/approvals/nope")
    assert missing.status_code == 404
