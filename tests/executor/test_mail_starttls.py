"""A password in OPSLEDGER_SMTP_URL goes out over TLS only: with a user in the URL, STARTTLS is
required unless the URL says `?starttls=0` (aiosmtplib's own default sends it in clear to a
server that offers no STARTTLS)."""

from __future__ import annotations

import contextlib
import shutil
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from pydantic import SecretStr

from libs.contracts.rules import EmailParams
from libs.events.embedded import free_port
from services.executor.actions import mail
from services.executor.actions.base import StepFailed

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl")


class Handler:
    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        return "250 OK"


@pytest.fixture
def tls_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[list[Any], int]]:
    cert, key = tmp_path / "c.pem", tmp_path / "k.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
         "-out", str(cert), "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # the client trusts this server
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)
    logins: list[Any] = []

    def authenticate(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> Any:
        logins.append((data.login, data.password, session.ssl is not None))
        return AuthResult(success=True)

    port = free_port()
    controller = Controller(
        Handler(), hostname="127.0.0.1", port=port, tls_context=server_ctx,
        authenticator=authenticate, auth_require_tls=False,
    )  # fmt: skip
    controller.start()
    yield logins, port
    controller.stop()


def context(url: str) -> Any:
    settings = SimpleNamespace(smtp_url=SecretStr(url), mail_from="ops@example.com")
    return SimpleNamespace(
        deps=SimpleNamespace(settings=settings), job_id="j1", step=0, timeout_s=5.0, values={}
    )


PARAMS = EmailParams.model_validate({"to": "a@example.com", "subject": "s", "body": "b"})


async def test_with_starttls_asked_for_the_password_goes_over_tls(
    tls_server: tuple[list[Any], int],
) -> None:
    logins, port = tls_server  # the control: the server and the trust work
    await mail.run(PARAMS, context(f"smtp://bot:hunter2@127.0.0.1:{port}?starttls=1"))
    assert logins == [(b"bot", b"hunter2", True)]


async def test_a_password_is_not_sent_in_clear_text_to_a_server_offering_starttls(
    tls_server: tuple[list[Any], int],
) -> None:
    logins, port = tls_server
    with contextlib.suppress(StepFailed):  # refusing credentials without TLS is fine too
        await mail.run(PARAMS, context(f"smtp://bot:hunter2@127.0.0.1:{port}"))
    assert all(over_tls for _, _, over_tls in logins), logins
