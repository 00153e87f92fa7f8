"""email `{to, subject, body}`: a message over SMTP (`OPSLEDGER_SMTP_URL`) with aiosmtplib.

The message has a plain-text part (the rendered body) and an HTML part (the same text,
escaped, line breaks kept), is from `OPSLEDGER_MAIL_FROM`, and has a Message-ID made from the
job and step, the same on every attempt, so a receiver can drop a repeat. `to` is one or more
addresses, comma-separated. A subject or address with a line break is refused (no header
injection); so are more than MAX_RECIPIENTS. No SMTP configured, a malformed URL, a refused
recipient or a permanent (5xx) answer fail the step for good; a lost connection, a timeout or a
transient (4xx) answer is retried."""

from __future__ import annotations

import html
from dataclasses import dataclass
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import getaddresses
from typing import Any, Final
from urllib.parse import parse_qs, unquote, urlsplit

import aiosmtplib

from libs.contracts.rules import EmailParams
from services.executor.actions.base import Action, ActionContext, StepFailed

MAX_RECIPIENTS: Final = 20
PORTS: Final = {"smtp": 25, "smtps": 465}


@dataclass(frozen=True)
class SmtpServer:
    host: str
    port: int
    username: str | None
    password: str | None
    use_tls: bool
    start_tls: bool


def smtp_server(url: str) -> SmtpServer:
    """The server an `OPSLEDGER_SMTP_URL` names; ValueError (saying why) when it names none."""
    parts = urlsplit(url)
    if parts.scheme not in PORTS or not parts.hostname:
        raise ValueError("OPSLEDGER_SMTP_URL must be smtp://[user:pass@]host[:port] or smtps://")
    starttls = parse_qs(parts.query).get("starttls", ["0"])[-1].lower() in ("1", "true", "yes")
    return SmtpServer(
        host=parts.hostname,
        port=parts.port or PORTS[parts.scheme],
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        use_tls=parts.scheme == "smtps",
        start_tls=starttls and parts.scheme == "smtp",
    )


def recipients(to: str) -> list[str]:
    """The addresses of `to`; StepFailed when one is not an address."""
    if "\r" in to or "\n" in to:
        raise StepFailed("the email's recipients contain a line break", retryable=False)
    found = [address for _, address in getaddresses([to]) if address]
    if not found:
        raise StepFailed(f"no email address in {to!r}", retryable=False)
    if len(found) > MAX_RECIPIENTS:
        raise StepFailed(f"at most {MAX_RECIPIENTS} recipients per email", retryable=False)
    for address in found:
        local, _, domain = address.rpartition("@")
        if not local or "." not in domain or any(c.isspace() for c in address):
            raise StepFailed(f"{address!r} is not an email address", retryable=False)
    return found


def html_part(text: str) -> str:
    paragraphs = html.escape(text).replace("\r\n", "\n").split("\n")
    return "<!doctype html><html><body><p>" + "<br>\n".join(paragraphs) + "</p></body></html>"


def message(params: EmailParams, context: ActionContext, sender: str) -> EmailMessage:
    if "\r" in params.subject or "\n" in params.subject:
        raise StepFailed("the email's subject contains a line break", retryable=False)
    msg = EmailMessage()
    try:
        msg["From"] = sender
        msg["To"] = [Address(addr_spec=a) for a in recipients(params.to)]
        msg["Subject"] = params.subject
    except (ValueError, IndexError) as exc:
        raise StepFailed(f"the email's headers are not valid: {exc}", retryable=False) from None
    msg["Message-ID"] = f"<job-{context.job_id}.step-{context.step}@opsledger>"
    msg.set_content(params.body)
    msg.add_alternative(html_part(params.body), subtype="html")
    return msg


async def run(params: EmailParams, context: ActionContext) -> dict[str, Any]:
    settings = context.deps.settings
    if settings.smtp_url is None:
        raise StepFailed("email is not configured: set OPSLEDGER_SMTP_URL", retryable=False)
    try:
        server = smtp_server(settings.smtp_url.get_secret_value())
    except ValueError as exc:
        raise StepFailed(str(exc), retryable=False) from None
    msg = message(params, context, settings.mail_from)
    try:
        refused, _ = await aiosmtplib.send(
            msg,
            hostname=server.host,
            port=server.port,
            username=server.username,
            password=server.password,
            use_tls=server.use_tls,
            start_tls=server.start_tls,
            timeout=context.timeout_s,
        )
    except aiosmtplib.SMTPRecipientsRefused as exc:
        said = "; ".join(f"{r.recipient}: {r.code} {r.message}" for r in exc.recipients)
        raise StepFailed(
            f"the mail server refused every recipient ({said})", retryable=False
        ) from None
    except aiosmtplib.SMTPResponseException as exc:
        permanent = 500 <= exc.code < 600
        raise StepFailed(
            f"the mail server answered {exc.code} {exc.message}", retryable=not permanent
        ) from None
    except (aiosmtplib.SMTPException, OSError) as exc:
        raise StepFailed(f"{server.host}:{server.port}: {type(exc).__name__}: {exc}") from None
    accepted = [a for a in recipients(params.to) if a not in refused]
    return {"message_id": msg["Message-ID"], "accepted": accepted, "refused": sorted(refused)}


ACTION = Action(params=EmailParams, run=run)
