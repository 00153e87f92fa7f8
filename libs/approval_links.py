"""Signed approval links, for the approve / reject buttons of chat messages.

`/approve?approval=<id>&vote=approve|reject&user=<approver>&exp=<unix s>&nonce=<hex>&sig=<hex>`:
`sig` is an HMAC-SHA256, under a key derived from the server secret for this one purpose, over
every other parameter (names sorted, each `name=value` on its own line, after a version tag),
so no parameter can be changed, added or left out without the link failing. `exp` ends it;
`nonce` is the link's id, which the approvals service records with the vote it casts, so a link
decides once. A GET of the link only shows a confirmation page (link previews and mail scanners
fetch links); the page's POST to the same address decides, as `user`.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final, Literal
from urllib.parse import urlencode

PATH: Final = "/approve"
TAG: Final = b"opsledger.approval-link.v1"
FIELDS: Final = ("approval", "exp", "nonce", "user", "vote")
_VALUE: Final = re.compile(r"^[A-Za-z0-9._:@-]{1,100}$")
LinkVote = Literal["approve", "reject"]


@dataclass(frozen=True)
class Link:
    """What a checked link says: who may decide which request, how, until when."""

    approval_id: str
    vote: LinkVote
    user_id: str
    expires_at: int
    nonce: str

    @property
    def params(self) -> dict[str, str]:
        return {
            "approval": self.approval_id,
            "exp": str(self.expires_at),
            "nonce": self.nonce,
            "user": self.user_id,
            "vote": self.vote,
        }


class LinkRefused(Exception):
    """The link is not one we issued as it stands (`altered`), or it has `expired`."""

    def __init__(self, reason: Literal["altered", "expired"], message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


def _key(secret: bytes) -> bytes:
    return hmac.new(secret, TAG, hashlib.sha256).digest()


def _signature(secret: bytes, params: Mapping[str, str]) -> str:
    lines = [TAG, *(f"{name}={params[name]}".encode() for name in FIELDS)]
    return hmac.new(_key(secret), b"\n".join(lines), hashlib.sha256).hexdigest()


def mint(
    secret: bytes,
    *,
    base_url: str,
    approval_id: str,
    vote: LinkVote,
    user_id: str,
    expires_at: datetime,
) -> str:
    """A link for `user_id` to cast `vote` on `approval_id` until `expires_at`."""
    link = Link(approval_id, vote, user_id, int(expires_at.timestamp()), secrets.token_hex(16))
    for value in link.params.values():
        if not _VALUE.match(value):
            raise ValueError(f"{value!r} cannot be put in a signed link")
    query = link.params | {"sig": _signature(secret, link.params)}
    return f"{base_url.rstrip('/')}{PATH}?{urlencode(query)}"


_SIGNATURE: Final = re.compile(r"^[0-9a-f]{64}$")


def check(secret: bytes, query: Sequence[tuple[str, str]], *, now: float | None = None) -> Link:
    """The link these query parameters (in order, repeats kept) make, or LinkRefused: any
    parameter missing, added, repeated, changed or malformed is `altered`; one past `exp` is
    `expired`."""
    names = [name for name, _ in query]
    if len(names) != len(set(names)) or set(names) != {*FIELDS, "sig"}:
        raise LinkRefused("altered", "this link is not one OpsLedger issued")
    given = dict(query)
    if not _SIGNATURE.match(given["sig"]):
        raise LinkRefused("altered", "this link is not one OpsLedger issued")
    return _checked(secret, given, now=now)


def _checked(secret: bytes, query: Mapping[str, str], *, now: float | None) -> Link:
    params = {name: query[name] for name in FIELDS}
    if not all(_VALUE.match(v) for v in params.values()) or not params["exp"].isdigit():
        raise LinkRefused("altered", "this link is not one OpsLedger issued")
    if not hmac.compare_digest(_signature(secret, params), query["sig"]):
        raise LinkRefused("altered", "this link was changed after it was issued")
    vote = params["vote"]
    if vote not in ("approve", "reject") or len(params["nonce"]) != 32:
        raise LinkRefused("altered", "this link is not one OpsLedger issued")
    expires = int(params["exp"])
    if (time.time() if now is None else now) >= expires:
        raise LinkRefused("expired", "this link has expired")
    chosen: LinkVote = "approve" if vote == "approve" else "reject"
    return Link(params["approval"], chosen, params["user"], expires, params["nonce"])
