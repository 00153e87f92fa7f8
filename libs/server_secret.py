"""The server's signing secret: required in production, generated once and kept in dev. The
gateway signs sessions with it and checks signed links; the executor signs the links it posts.
Several processes on one data dir share the one generated file; replicas on different hosts
must be given OPSLEDGER_SECRET (production refuses to start without it)."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import logging
import os
import secrets
from pathlib import Path

from libs.events.errors import ConfigurationError
from libs.events.settings import Settings

log = logging.getLogger(__name__)

SECRET_FILE = "secret.key"
SECRET_BYTES = 32


def resolve_secret(settings: Settings) -> bytes:
    """OPSLEDGER_SECRET when set; in production it must be. Otherwise a random secret created
    once under data_dir (mode 0600) and reused on every restart. There is no built-in fallback."""
    configured = settings.secret.get_secret_value() if settings.secret is not None else ""
    if configured:
        return configured.encode()
    if settings.env == "production":
        raise ConfigurationError("OPSLEDGER_SECRET must be set when OPSLEDGER_ENV=production")
    return _stored_secret(settings.data_dir / SECRET_FILE)


def require_secret(settings: Settings) -> None:
    """Preflight: refuse to start (before anything else starts) when no secret can be had."""
    resolve_secret(settings)


def _stored_secret(path: Path) -> bytes:
    if path.exists():
        return _read(path)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    # Written to a private temporary file, then linked into place: two processes starting at
    # once agree on one secret (the loser of the link reads the winner's), none sees a torn file.
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_hex(SECRET_BYTES) + "\n")
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)
            log.info("generated a new signing secret in %s", path)
    finally:
        tmp.unlink(missing_ok=True)
    return _read(path)


def _read(path: Path) -> bytes:
    text = path.read_text().strip()
    if len(text) < 2 * SECRET_BYTES:
        raise RuntimeError(f"{path} does not hold a secret; delete it to generate a new one")
    if path.stat().st_mode & 0o077:
        log.warning("%s is readable by others; restricting it to its owner", path)
        path.chmod(0o600)
    return text.encode()


def derive_key(secret: bytes, purpose: str) -> bytes:
    """A key for one purpose (cookies, links, ...), so no two uses share the raw secret."""
    return hmac.new(secret, f"opsledger/{purpose}".encode(), hashlib.sha256).digest()
