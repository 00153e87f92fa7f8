"""The `X-OpsLedger-Signature` header on every webhook and event delivery we send:
`t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">` keyed by the endpoint's secret, so a
receiver can check both who sent it and that it is fresh (the timestamp is signed too)."""

from __future__ import annotations

import hashlib
import hmac
import time

HEADER = "X-OpsLedger-Signature"
DEFAULT_TOLERANCE_S = 300


def signature(secret: str, body: bytes, *, at: int | None = None) -> str:
    """The header value for `body` sent at `at` (now by default)."""
    moment = int(time.time()) if at is None else at
    return f"t={moment},v1={_digest(secret, moment, body)}"


def verify(
    secret: str,
    header: str,
    body: bytes,
    *,
    tolerance_s: int = DEFAULT_TOLERANCE_S,
    now: int | None = None,
) -> bool:
    """What a receiver does: the header parses, is within `tolerance_s` of now, and one of its
    v1 values is the HMAC of this body (several v1 values allow a secret to be rotated)."""
    fields: dict[str, list[str]] = {}
    for part in header.split(","):
        key, sep, value = part.strip().partition("=")
        if sep:
            fields.setdefault(key, []).append(value)
    stamps = fields.get("t", [])
    if len(stamps) != 1 or not stamps[0].isdigit():
        return False
    moment = int(stamps[0])
    current = int(time.time()) if now is None else now
    if abs(current - moment) > tolerance_s:
        return False
    expected = _digest(secret, moment, body)
    return any(hmac.compare_digest(expected, given) for given in fields.get("v1", []))


def _digest(secret: str, moment: int, body: bytes) -> str:
    return hmac.new(secret.encode(), f"{moment}.".encode() + body, hashlib.sha256).hexdigest()
