"""The email action against a real SMTP server on loopback (aiosmtpd): a plain-text and an HTML
part, rendered recipients and subject, a Message-ID the same on every attempt; no SMTP
configured fails the job with a clear error, never silently; a header injection is refused; a
recipient the server refuses fails for good, a server that is down is retried."""

from __future__ import annotations

import email
import email.policy
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from pydantic import SecretStr

from libs.events.embedded import free_port
from libs.events.settings import Settings
from libs.events.testing import isolated_system
from services.executor.actions.mail import smtp_server
from services.executor.app import SERVICE as EXECUTOR
from services.tickets.app import SERVICE as TICKETS
from tests.executor.stack import Stack, seeded


@dataclass
class Inbox:
    """An aiosmtpd handler: keeps every message; refuses the recipients in `refuse`."""

    messages: list[tuple[str, list[str], bytes]] = field(default_factory=list)
    refuse: set[str] = field(default_factory=set)

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        if address in self.refuse:
            return "550 5.1.1 no such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 Message accepted"


@pytest.fixture
def inbox() -> Iterator[tuple[Inbox, int]]:
    handler = Inbox()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    yield handler, port
    controller.stop()


async def _stack(settings: Settings, database_url: str, nats_url: str) -> AsyncIterator[Stack]:
    system = isolated_system(
        settings, database_url, nats_url, services=(TICKETS, EXECUTOR), timers=True
    )
    async with system as deps:
        yield await seeded(deps)


@pytest.fixture
async def mailing(
    fast: Settings, inbox: tuple[Inbox, int], database_url: str, nats_url: str
) -> AsyncIterator[Stack]:
    settings = fast.model_copy(
        update={
            "smtp_url": SecretStr(f"smtp://127.0.0.1:{inbox[1]}"),
            "mail_from": "OpsLedger <ops@example.com>",
        }
    )
    async for stack in _stack(settings, database_url, nats_url):
        yield stack


def mail(**params: str) -> dict[str, Any]:
    return {"type": "email", "params": params}


async def test_an_email_has_a_text_and_an_html_part_and_a_stable_message_id(
    mailing: Stack, inbox: tuple[Inbox, int]
) -> None:
    key = await mailing.ticket()
    action = mail(
        to="oncall@example.com, Lead <lead@example.com>",
        subject="[{{ ticket.key }}] {{ ticket.title }}",
        body="Ticket {{ ticket.key }} needs you.\n<b>not bold</b>",
    )
    job_id = await mailing.queue([action], ticket=key)
    job = await mailing.settled(job_id)
    assert job["state"] == "succeeded", job["last_error"]
    [(sender, to, raw)] = inbox[0].messages
    assert sender == "ops@example.com" and to == ["oncall@example.com", "lead@example.com"]
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert parsed["Subject"] == f"[{key}] API is down"
    assert parsed["Message-ID"] == f"<job-{job_id}.step-0@opsledger>"
    text = parsed.get_body(preferencelist=("plain",))
    page = parsed.get_body(preferencelist=("html",))
    assert text is not None and page is not None
    assert text.get_content().splitlines() == [f"Ticket {key} needs you.", "<b>not bold</b>"]
    assert "&lt;b&gt;not bold&lt;/b&gt;" in page.get_content() and "<br>" in page.get_content()


async def test_without_smtp_the_job_fails_saying_so(stack: Stack) -> None:
    key = await stack.ticket()
    job_id = await stack.queue([mail(to="a@example.com", subject="s", body="b")], ticket=key)
    job = await stack.settled(job_id)
    assert job["state"] == "dead_lettered" and job["attempts"] == 1
    assert job["last_error"] == "email is not configured: set OPSLEDGER_SMTP_URL"


async def test_a_line_break_in_a_header_is_refused_and_nothing_is_sent(
    mailing: Stack, inbox: tuple[Inbox, int]
) -> None:
    key = await mailing.ticket()
    injected = mail(to="a@example.com", subject="hi\r\nBcc: victim@example.com", body="b")
    job = await mailing.settled(await mailing.queue([injected], ticket=key))
    assert job["state"] == "dead_lettered" and "line break" in job["last_error"]
    smuggled = mail(to="a@example.com\nBcc: victim@example.com", subject="s", body="b")
    job = await mailing.settled(await mailing.queue([smuggled], ticket=key))
    assert job["state"] == "dead_lettered" and "not one email address" in job["last_error"]
    assert inbox[0].messages == []


async def test_a_refused_recipient_fails_for_good(mailing: Stack, inbox: tuple[Inbox, int]) -> None:
    inbox[0].refuse.add("nobody@example.com")
    key = await mailing.ticket()
    job_id = await mailing.queue([mail(to="nobody@example.com", subject="s", body="b")], ticket=key)
    job = await mailing.settled(job_id)
    assert job["state"] == "dead_lettered" and job["attempts"] == 1
    assert "550" in job["last_error"] and "nobody@example.com" in job["last_error"]


async def test_a_mail_server_that_is_down_is_retried(
    fast: Settings, database_url: str, nats_url: str
) -> None:
    down = fast.model_copy(update={"smtp_url": SecretStr(f"smtp://127.0.0.1:{free_port()}")})
    async for stack in _stack(down, database_url, nats_url):
        key = await stack.ticket()
        job_id = await stack.queue([mail(to="a@example.com", subject="s", body="b")], ticket=key)
        job = await stack.settled(job_id)
        assert job["state"] == "dead_lettered"
        assert job["attempts"] == fast.executor_max_attempts
        assert job["last_error"].startswith("127.0.0.1:")


def test_the_smtp_url_names_the_server() -> None:
    plain = smtp_server("smtp://bot%40ops:p%3Ass@mail.example.com:2525?starttls=1")
    assert (plain.host, plain.port, plain.username, plain.password) == (
        "mail.example.com", 2525, "bot@ops", "p:ss",
    )  # fmt: skip
    assert plain.start_tls and not plain.use_tls
    tls = smtp_server("smtps://mail.example.com")
    assert tls.port == 465 and tls.use_tls and not tls.start_tls
    for bad in ("http://mail.example.com", "smtp://", "mail.example.com"):
        with pytest.raises(ValueError, match="OPSLEDGER_SMTP_URL"):
            smtp_server(bad)
