"""No header or recipient injection through rendered email params: a requester controls a
ticket's title, which rules render into `subject` ("[{{ ticket.key }}] {{ ticket.title }}") or
into `to`; an encoded word never decodes to a line break, and a value never adds a recipient."""

from __future__ import annotations

import email
import email.policy
from typing import Any
from uuid import uuid4

import pytest

from libs.contracts.rules import EmailParams, RuleBody
from libs.events.store import NO_STREAM
from libs.rules.firing import RuleVersion
from services.executor.actions import StepFailed, prepare
from services.executor.actions.mail import message, recipients
from services.rules.domain import decide_firing
from tests.executor import test_mail
from tests.executor.jobs import queued, trigger
from tests.executor.stack import RULES, Stack
from tests.executor.test_mail import Inbox

inbox = test_mail.inbox  # the aiosmtpd fixture
mailing = test_mail.mailing  # the executor sending to it


class _Ctx:
    job_id = "j1"
    step = 0


# an ordinary printable title: no CR or LF anywhere in it
EVIL_TITLE = (
    "=?utf-8?q?down=0D=0ABcc:_victim@attacker.example=0D=0AReply-To:_evil@attacker.example?="
)


def _raw(subject: str) -> bytes:
    params = EmailParams.model_validate(
        {"to": "oncall@example.com", "subject": subject, "body": "b"}
    )
    to = ["oncall@example.com"]
    return message(params, _Ctx(), "OpsLedger <ops@example.com>", to).as_bytes(  # type: ignore[arg-type]
        policy=email.policy.SMTP
    )


def test_an_encoded_word_in_the_subject_does_not_become_a_line_break() -> None:
    subject = prepare(
        "email",
        {
            "to": "oncall@example.com",
            "subject": "[{{ ticket.key }}] {{ ticket.title }}",
            "body": "b",
        },
        {"ticket": {"key": "OPS-1", "title": EVIL_TITLE}},
    )
    assert isinstance(subject, EmailParams)
    assert "\r" not in subject.subject and "\n" not in subject.subject  # the check passes...
    raw = _raw(subject.subject)
    headers = raw.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
    # ...but the encoded word is decoded and written back as a raw CRLF: new header lines
    assert not any(h.lower().startswith((b"bcc:", b"reply-to:")) for h in headers), headers


def test_an_encoded_word_cannot_end_the_headers_and_replace_the_body() -> None:
    raw = _raw("[OPS-1] =?utf-8?q?x=0D=0A=0D=0Aphishing_text?=")
    head = raw.split(b"\r\n\r\n", 1)[0]
    assert b"Message-ID:" in head and b"Content-Type: multipart/alternative" in head, head


async def _queue_with_title(stack: Stack, key: str, title: str, action: dict[str, Any]) -> str:
    body = RuleBody.model_validate(
        {"name": "r", "mode": "active", "trigger": {"event": "ticket.created"}, "actions": [action]}
    )
    view = {"key": key, "title": title, "status": "open", "tags": []}
    events = decide_firing(RuleVersion(f"r-{uuid4().hex[:8]}", 1, body), trigger(key), view)
    job = queued(events).job_id
    await stack.deps.store.append(f"job-{job}", events, expected_version=NO_STREAM, metadata=RULES)
    return job


async def test_a_ticket_title_cannot_add_headers_to_the_delivered_mail(
    mailing: Stack,
    inbox: tuple[Inbox, int],
) -> None:
    key = await mailing.ticket()
    action = {
        "type": "email",
        "params": {
            "to": "oncall@example.com",
            "subject": "[{{ ticket.key }}] {{ ticket.title }}",
            "body": "b",
        },
    }
    job = await mailing.settled(await _queue_with_title(mailing, key, EVIL_TITLE, action))
    for _, _, raw in inbox[0].messages:
        parsed = email.message_from_bytes(raw, policy=email.policy.default)
        assert parsed["Bcc"] is None and parsed["Reply-To"] is None, raw[:300]
    assert job["state"] in ("succeeded", "dead_lettered")


@pytest.mark.parametrize(
    ("to", "title"),
    [
        ('"{{ ticket.title }}" <oncall@example.com>', 'x" <evil@attacker.example>, "y'),
        ("{{ ticket.title }} <oncall@example.com>", "evil@attacker.example"),
        ("{{ ticket.title }} <oncall@example.com>", "evil@attacker.example)"),
    ],
)
def test_a_title_in_a_display_name_cannot_add_a_recipient(to: str, title: str) -> None:
    # a rule author writes the requester's name as the display name of a fixed address
    params = prepare("email", {"to": to, "subject": "s", "body": "b"}, {"ticket": {"title": title}})
    assert isinstance(params, EmailParams)
    assert recipients(params.to, {"ticket": {"title": title}}) == ["oncall@example.com"]


def test_a_value_that_renders_to_two_addresses_is_refused() -> None:
    values = {"ticket": {"fields": {"contact": "me@example.com, spam@attacker.example"}}}
    with pytest.raises(StepFailed, match="not one email address"):
        recipients("{{ ticket.fields.contact }}", values)
