"""The gateway's side of credentials: HMAC-signed session cookies, and comparing digests in
constant time. Token formats and digests are the people contract's (libs/contracts/people.py)."""

from __future__ import annotations

import base64
import hashlib
import hmac

from services.gateway.secret import derive_key

SESSION_COOKIE = "opsledger_session"


def same(a: str, b: str) -> bool:
    """Constant-time string comparison (safe for any characters)."""
    return hmac.compare_digest(a.encode(), b.encode())


def _mac(secret: bytes, payload: str) -> str:
    mac = hmac.new(derive_key(secret, "session-cookie"), payload.encode(), hashlib.sha256)
    return base64.urlsafe_b64encode(mac.digest()).rstrip(b"=").decode()


def sign_session(secret: bytes, session_id: str, session_secret: str) -> str:
    """Cookie value `<session id>.<session secret>.<HMAC-SHA256 of both>`."""
    payload = f"{session_id}.{session_secret}"
    return f"{payload}.{_mac(secret, payload)}"


def read_session_cookie(secret: bytes, value: str) -> tuple[str, str] | None:
    """(session id, session secret) when the signature holds, else None."""
    parts = value.split(".")
    if len(value) > 256 or len(parts) != 3:
        return None
    session_id, session_secret, mac = parts
    if not same(_mac(secret, f"{session_id}.{session_secret}"), mac):
        return None
    return session_id, session_secret
