"""Signed approval links (`/approve?...`, libs/approval_links.py): a GET shows what the link
would decide and a button; only that page's POST to the same address decides. Chat link
previews and mail scanners fetch links, so a GET never changes anything.

A link is refused with a page that says why: changed or not ours (403), expired (410), used
already, or the request decided already (409), or its holder no longer an allowed approver
(403). The approvals service records the link's id with the vote, so a link decides once, and
checks that the approver it was issued to may still decide."""

from __future__ import annotations

from html import escape
from typing import Final
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from libs.approval_links import PATH, Link, LinkRefused, check
from libs.contracts import approvals as contract
from libs.events.contract import ask
from libs.events.envelope import Actor
from libs.events.errors import ServiceError
from services.gateway.deps import DepsDep

router = APIRouter(tags=["approvals"], include_in_schema=False)
GATEWAY: Final = Actor.service("gateway")
VERBS: Final = {"approve": "Approve", "reject": "Reject"}
STATUS_OF: Final = {"altered": 403, "expired": 410}


def _page(title: str, body: str, *, status: int = 200) -> HTMLResponse:
    html = (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        '<meta name=viewport content="width=device-width">'
        f"<title>{escape(title)} · OpsLedger</title></head>"
        f"<body><main><h1>{escape(title)}</h1>{body}</main></body></html>"
    )
    return HTMLResponse(html, status_code=status, headers={"Cache-Control": "no-store"})


def _refused(title: str, why: str, status: int) -> HTMLResponse:
    return _page(title, f"<p>{escape(why)}</p>", status=status)


def _what(approval: contract.ApprovalOut) -> str:
    subject = approval.ticket or approval.incident or "—"
    return (
        f"<dl><dt>Ticket</dt><dd>{escape(subject)}</dd>"
        f"<dt>Waiting action</dt><dd>{escape(approval.summary)}</dd>"
        f"<dt>Approvals needed</dt><dd>{approval.quorum}</dd>"
        f"<dt>Expires</dt><dd>{escape(approval.expires_at.isoformat())}</dd></dl>"
    )


def _link(request: Request) -> Link:
    secret: bytes = request.app.state.secret
    return check(secret, request.query_params.multi_items())


@router.get(PATH, response_class=HTMLResponse)
async def confirm(deps: DepsDep, request: Request) -> HTMLResponse:
    """The confirmation page: what the link would decide, and its one button."""
    try:
        link = _link(request)
        probe = contract.LinkCheckIn(id=link.approval_id, user_id=link.user_id, link_id=link.nonce)
        checked = await ask(deps.rpc, contract.APPROVALS_LINK_CHECK, probe, actor=GATEWAY)
    except LinkRefused as refused:
        return _refused("This link cannot be used", refused.message, STATUS_OF[refused.reason])
    except ServiceError as failed:
        return _refused("This link cannot be used", failed.message, failed.status)
    if not checked.usable:
        return _refused("This link cannot be used", checked.why_not or "", 409)
    verb = VERBS[link.vote]
    form = (
        f"<p>{escape(verb)} as {escape(link.user_id)}?</p>{_what(checked.approval)}"
        "<form method=post><label>Reason (optional) <input name=reason maxlength=2000>"
        f"</label> <button type=submit>{escape(verb)}</button></form>"
    )
    return _page(f"{verb} this request?", form)


@router.post(PATH, response_class=HTMLResponse)
async def decide(deps: DepsDep, request: Request) -> HTMLResponse:
    """The page's POST: cast the link's vote as the approver it was issued to, once."""
    try:
        link = _link(request)
    except LinkRefused as refused:
        return _refused("This link cannot be used", refused.message, STATUS_OF[refused.reason])
    reason = await _reason(request)
    vote = contract.DecideIn(
        id=link.approval_id,
        vote=link.vote,
        reason=reason,
        via="link",
        user_id=link.user_id,
        link_id=link.nonce,
    )
    try:
        decided = await ask(deps.rpc, contract.APPROVALS_DECIDE, vote, actor=GATEWAY)
    except ServiceError as failed:
        return _refused("This link cannot be used", failed.message, failed.status)
    done = "approved" if link.vote == "approve" else "rejected"
    return _page(
        f"You {done} it",
        f"<p>The request is now {escape(decided.status)}.</p>{_what(decided)}",
    )


async def _reason(request: Request) -> str | None:
    """The form's optional reason (urlencoded, at most 2,000 characters, no NUL)."""
    raw = await request.body()
    if not raw:
        return None
    try:
        values = parse_qs(raw.decode("utf-8"), max_num_fields=5).get("reason", [""])
    except (UnicodeDecodeError, ValueError):
        return None
    text = values[0].replace("\x00", "").strip()[:2000]
    return text or None
