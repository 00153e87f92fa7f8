"""How the email action classifies SMTP outcomes (retried or not) and reports them, against a
real aiosmtpd."""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from pydantic import SecretStr

from libs.contracts.rules import EmailParams
from libs.events.embedded import free_port
from services.executor.actions import mail
from services.executor.actions.base import StepFailed


class Refusing:
    """Keeps messages; answers RCPT for the addresses in `refuse` with the given reply."""

    def __init__(self) -> None:
        self.refuse: dict[str, str] = {}
        self.messages: list[tuple[str, list[str]]] = []

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos)))
        return "250 OK"


def _server(**kwargs: Any) -> Iterator[tuple[Refusing, int]]:
    handler, port = Refusing(), free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port, **kwargs)
    controller.start()
    yield handler, port
    controller.stop()


@pytest.fixture
def server() -> Iterator[tuple[Refusing, int]]:
    yield from _server()


@pytest.fixture
def ascii_server() -> Iterator[tuple[Refusing, int]]:
    yield from _server(enable_SMTPUTF8=False)


def context(port: int) -> Any:
    settings = SimpleNamespace(
        smtp_url=SecretStr(f"smtp://127.0.0.1:{port}"), mail_from="ops@example.com"
    )
    return SimpleNamespace(
        deps=SimpleNamespace(settings=settings), job_id="j1", step=0, timeout_s=5.0, values={}
    )


def params(to: str) -> EmailParams:
    return EmailParams.model_validate({"to": to, "subject": "s", "body": "b"})


async def test_a_greylisting_4xx_for_every_recipient_is_retried(
    server: tuple[Refusing, int],
) -> None:
    handler, port = server
    handler.refuse["a@example.com"] = "450 4.2.0 greylisted, try again later"
    with pytest.raises(StepFailed) as failed:
        await mail.run(params("a@example.com"), context(port))
    assert failed.value.retryable, failed.value.message


async def test_a_recipient_refused_for_now_is_not_dropped_silently(
    server: tuple[Refusing, int],
) -> None:
    handler, port = server
    handler.refuse["b@example.com"] = "451 4.3.0 mailbox temporarily unavailable"
    try:
        result = await mail.run(params("a@example.com, b@example.com"), context(port))
    except StepFailed:
        return  # failing the step (and saying so) is one acceptable answer
    # succeeding is another only if b@ is not given up on without a trace of a retry
    pytest.fail(f"the step succeeded; b@example.com (4xx) will never get the mail: {result}")


async def test_accepted_and_refused_name_the_same_addresses_as_the_envelope(
    server: tuple[Refusing, int],
) -> None:
    handler, port = server
    handler.refuse["a@example.com"] = "550 5.1.1 no such user"
    result = await mail.run(params("a@example.com, b@example.com"), context(port))
    assert result["refused"] == ["a@example.com"]
    assert result["accepted"] == ["b@example.com"], result
    assert handler.messages == [("ops@example.com", ["b@example.com"])]


async def test_a_quoted_or_odd_mailbox_is_refused_before_sending(
    server: tuple[Refusing, int],
) -> None:
    handler, port = server
    for odd in ('"a"@example.com', "a b@example.com", "a@example", "<>"):
        with pytest.raises(StepFailed) as failed:
            await mail.run(params(odd), context(port))
        assert not failed.value.retryable
    assert handler.messages == []


async def test_an_idn_domain_goes_as_punycode_to_a_server_without_smtputf8(
    ascii_server: tuple[Refusing, int],
) -> None:
    handler, port = ascii_server
    result = await mail.run(params("oncall@bücher.example"), context(port))
    assert result["accepted"] == ["oncall@xn--bcher-kva.example"]
    assert handler.messages == [("ops@example.com", ["oncall@xn--bcher-kva.example"])]


async def test_a_non_ascii_mailbox_name_fails_for_good(ascii_server: tuple[Refusing, int]) -> None:
    _, port = ascii_server
    with pytest.raises(StepFailed) as failed:
        await mail.run(params("jürgen@example.com"), context(port))
    assert not failed.value.retryable, failed.value.message


async def test_no_nul_byte_is_sent_raw(server: tuple[Refusing, int]) -> None:
    _, port = server
    in_subject = EmailParams.model_validate(
        {"to": "a@example.com", "subject": "a\x00b", "body": "c"}
    )
    with pytest.raises(StepFailed, match="control character"):
        mail.message(in_subject, context(port), "ops@example.com", ["a@example.com"])
    in_body = EmailParams.model_validate({"to": "a@example.com", "subject": "s", "body": "c\x00d"})
    msg = mail.message(in_body, context(port), "ops@example.com", ["a@example.com"])
    text = msg.get_body(("plain",))
    assert b"\x00" not in msg.as_bytes() and text is not None and "cd" in text.get_content()
