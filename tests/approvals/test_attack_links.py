"""Hostile review of the signed links and the approvals routes, over HTTP.

Each test names what it attacks; a refusal must be a page (or an error body) that says why,
never a 500. Tests marked `Fixed` proved a defect as first reviewed."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode, urlsplit

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
from tests.approvals.support import gated_rule
from tests.approvals.test_links_http import Desk
from tests.executor.conftest import FAST
from tests.gateway.helpers import join, running_gateway


@pytest.fixture
async def desk(settings: Settings, database_url: str, nats_url: str) -> AsyncIterator[Desk]:
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


async def _pending(desk: Desk, **approval: object) -> tuple[str, str]:
    """A gated deployment (operators approve); its key and its approval request's id."""
    gate = {"approvers": {"roles": ["operator"]}, "quorum": 1} | approval
    made = await desk.client(desk.admin).post("/api/v1/rules", json=gated_rule(approval=gate))
    assert made.status_code == 201, made.text
    key = await desk.deploy()
    request = await desk.approval_of(key)
    return key, str(request["id"])


def _link(desk: Desk, approval_id: str, user_id: str, vote: str = "approve") -> str:
    secret: bytes = desk.gateway.app.state.secret
    url = mint(
        secret,
        base_url="http://test",
        approval_id=approval_id,
        vote=vote,  # type: ignore[arg-type]
        user_id=user_id,
        expires_at=datetime.now(UTC) + timedelta(hours=1),
    )
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


def _query(link: str) -> dict[str, str]:
    return dict(kv.split("=", 1) for kv in urlsplit(link).query.split("&"))


# --- found by the attack, fixed since ------------------------------------------------------------


async def test_a_link_with_a_non_ascii_signature_is_refused_with_a_page_not_a_500(
    desk: Desk,
) -> None:
    """Fixed: `hmac.compare_digest` raises TypeError on a non-ASCII str, and `check` does
    not validate `sig` before comparing, so GET and POST /approve answer 500."""
    _key, approval = await _pending(desk)
    query = _query(_link(desk, approval, desk.operator.id))
    query["sig"] = "\u00e9" * 64
    forged = f"/approve?{urlencode(query)}"
    anonymous = desk.client()
    shown = await anonymous.get(forged)
    assert shown.status_code == 403, (shown.status_code, shown.text[:300])
    posted = await anonymous.post(forged)
    assert posted.status_code == 403, (posted.status_code, posted.text[:300])


async def test_a_repeated_parameter_is_an_added_parameter_and_refused(desk: Desk) -> None:
    """Fixed (low): `dict(request.query_params)` keeps the last of repeated parameters, so
    `?vote=reject&<the signed approve link>` passes the signature check although a parameter
    was added; the docstring promises no parameter can be added."""
    _key, approval = await _pending(desk)
    link = _link(desk, approval, desk.operator.id)
    doubled = f"/approve?vote=reject&{urlsplit(link).query}"
    shown = await desk.client().get(doubled)
    assert shown.status_code == 403, (shown.status_code, shown.text[:300])


async def test_a_cursor_with_a_date_out_of_range_is_invalid_cursor_not_a_500(desk: Desk) -> None:
    """Fixed: a cursor whose `at` parses (aware, year 1, +23:59) cannot be sent to Postgres
    (it is before year 1 in UTC): OverflowError escapes `_decode`'s except clause."""
    raw = json.dumps({"at": "0001-01-01T00:00:00+23:59", "id": "x"}).encode()
    cursor = base64.urlsafe_b64encode(raw).decode()
    page = await desk.client(desk.admin).get("/api/v1/approvals", params={"cursor": cursor})
    assert page.status_code == 422, (page.status_code, page.text[:300])
    assert page.json()["error"]["code"] == "INVALID_CURSOR"


async def test_a_cursor_with_a_nul_in_its_id_is_invalid_cursor_not_a_500(desk: Desk) -> None:
    """Fixed: the cursor's id goes to the query as is."""
    raw = json.dumps({"at": "2024-01-01T00:00:00+00:00", "id": "a\u0000b"}).encode()
    cursor = base64.urlsafe_b64encode(raw).decode()
    page = await desk.client(desk.admin).get("/api/v1/approvals", params={"cursor": cursor})
    assert page.status_code == 422, (page.status_code, page.text[:300])


async def test_nul_in_ids_and_filters_is_a_4xx_not_a_500(desk: Desk) -> None:
    admin = desk.client(desk.admin)
    for response in (
        await admin.get("/api/v1/approvals", params={"ticket": "OPS-\u00001"}),
        await admin.get("/api/v1/approvals/a%00b"),
        await desk.client(desk.operator).post("/api/v1/approvals/a%00b/approve"),
    ):
        assert 400 <= response.status_code < 500, (response.status_code, response.text[:300])


# --- holds (documents what was tried) ------------------------------------------------------


async def test_garbage_cursors_and_limits_are_refused_cleanly(desk: Desk) -> None:
    admin = desk.client(desk.admin)
    garbage = [
        "!!!",
        base64.urlsafe_b64encode(b"\xff\xfe").decode(),
        base64.urlsafe_b64encode(b"[1]").decode(),
        base64.urlsafe_b64encode(b'"x"').decode(),
        base64.urlsafe_b64encode(b'{"at": 5, "id": 1}').decode(),
        base64.urlsafe_b64encode(b'{"at": "nope", "id": "x"}').decode(),
    ]
    for cursor in garbage:
        page = await admin.get("/api/v1/approvals", params={"cursor": cursor})
        assert page.status_code == 422, (cursor, page.status_code, page.text[:300])
        assert page.json()["error"]["code"] == "INVALID_CURSOR"
    for limit in ("0", "-1", "201", "abc", "1e9"):
        page = await admin.get("/api/v1/approvals", params={"limit": limit})
        assert page.status_code in (400, 422), (limit, page.status_code)
    assert (await admin.get("/api/v1/approvals", params={"cursor": "x" * 501})).status_code in (
        400,
        422,
    )


async def test_hostile_link_queries_are_refused_with_a_page(desk: Desk) -> None:
    _key, approval = await _pending(desk)
    good = _query(_link(desk, approval, desk.operator.id))
    anonymous = desk.client()
    hostile = [
        "",
        "approval=",
        urlencode(good | {"user": "u\u0000"}),
        urlencode(good | {"user": "\u00fc" * 10}),
        urlencode(good | {"approval": "a" * 50_000}),
        urlencode(good | {"exp": "\u0661\u0662\u0663"}),
        urlencode(good | {"exp": "99999999999999999999999999"}),
        urlencode(good | {"sig": good["sig"].upper()}),
        urlencode({k: v for k, v in good.items() if k != "nonce"}),
    ]
    for query in hostile:
        for method in ("GET", "POST"):
            page = await anonymous.request(method, f"/approve?{query}")
            assert page.status_code in (403, 410, 414, 431), (query[:80], method, page.status_code)
            assert page.status_code in (414, 431) or "cannot be used" in page.text
    assert (await desk.approval_of(_key))["status"] == "pending"


async def test_a_link_signed_for_another_or_a_missing_approval(desk: Desk) -> None:
    key, approval = await _pending(desk)
    other = _query(_link(desk, "00000000-0000-4000-8000-000000000000", desk.operator.id))
    mine = _query(_link(desk, approval, desk.operator.id))
    swapped = other | {"approval": approval}
    anonymous = desk.client()
    assert (await anonymous.post(f"/approve?{urlencode(swapped)}")).status_code == 403
    missing = await anonymous.get(f"/approve?{urlencode(other)}")
    assert missing.status_code == 404 and "cannot be used" in missing.text
    assert (await anonymous.post(f"/approve?{urlencode(other)}")).status_code == 404
    assert mine["approval"] == approval
    assert (await desk.approval_of(key))["status"] == "pending"


async def test_a_validly_signed_link_for_the_requester_or_an_outsider_decides_nothing(
    desk: Desk,
) -> None:
    key, approval = await _pending(desk, approvers={"roles": ["operator", "requester"]})
    anonymous = desk.client()
    # alice holds the `requester` role the gate names, but she requested the ticket
    mine = _link(desk, approval, desk.alice.id)
    page = await anonymous.get(mine)
    assert page.status_code == 409 and "requester" in page.text
    refused = await anonymous.post(mine)
    assert refused.status_code == 403 and "requester" in refused.text
    nobody = _link(desk, approval, "u-nobody")
    assert (await anonymous.post(nobody)).status_code == 403
    assert (await desk.approval_of(key))["status"] == "pending"


async def test_a_post_body_that_is_not_utf8_or_repeats_fields_still_decides_once(
    desk: Desk,
) -> None:
    key, approval = await _pending(desk)
    link = _link(desk, approval, desk.operator.id)
    anonymous = desk.client()
    posted = await anonymous.post(
        link,
        content=b"reason=\xff\xfe\x00" + b"&reason=x" * 20,
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert posted.status_code == 200, posted.text[:300]
    again = await anonymous.post(link, data={"reason": "again"})
    assert again.status_code == 409
    huge = await anonymous.post(link, content=b"reason=" + b"a" * (2 * 1024 * 1024))
    assert huge.status_code in (409, 413)
    request = await desk.approval_of(key)
    assert request["status"] == "approved" and len(request["decisions"]) == 1


async def test_a_cross_site_post_of_a_link_is_refused_and_decides_nothing(desk: Desk) -> None:
    """CSRF: a page on another origin auto-submitting the link's form decides nothing."""
    key, approval = await _pending(desk)
    link = _link(desk, approval, desk.operator.id)
    posted = await desk.client().post(
        link,
        data={"reason": "csrf"},
        headers={"origin": "https://evil.example", "sec-fetch-site": "cross-site"},
    )
    assert posted.status_code == 403
    assert (await desk.approval_of(key))["status"] == "pending"


async def test_a_link_of_a_deactivated_approver_decides_nothing(desk: Desk) -> None:
    key, approval = await _pending(desk)
    link = _link(desk, approval, desk.operator.id)
    off = await desk.client(desk.admin).patch(
        f"/api/v1/users/{desk.operator.id}", json={"active": False}
    )
    assert off.status_code in (200, 204), off.text

    async def inactive() -> bool:
        return not await desk.gateway.deps.pool.fetchval(
            "SELECT active FROM approvals.people WHERE user_id = $1", desk.operator.id
        )

    assert await eventually(inactive, timeout=20)
    refused = await desk.client().post(link)
    assert refused.status_code == 403 and "deactivated" in refused.text
    assert (await desk.approval_of(key))["status"] == "pending"
