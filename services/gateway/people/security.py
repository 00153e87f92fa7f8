"""The gateway's side of credentials: HMAC-signed session cookies (and their name, `__Host-`
prefixed over https), and comparing digests in constant time. Token formats and digests are the
people contract's (libs/contracts/people.py)."""

from __future__ import annotations

import base64
import hashlib
import hmac

from libs.server_secret import derive_key

SESSION_COOKIE = "opsledger_session"
"""The session cookie's name over plain http (development on localhost)."""
HOST_SESSION_COOKIE = f"__Host-{SESSION_COOKIE}"
"""Its name over https. Browsers accept a `__Host-` cookie only when Secure, with Path=/ and no
Domain, from the host itself: a sibling host cannot toss its own session in (OWASP ASVS 5.0
V3.3.1), so only this name is read on an https request."""


def session_cookie(scheme: str) -> str:
    """The session cookie's name on a request of this scheme (`request.url.scheme`, which
    follows a trusted proxy's X-Forwarded-Proto)."""
    return HOST_SESSION_COOKIE if scheme == "https" else SESSION_COOKIE


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
