"""email `{to, subject, body}`: a message over SMTP (`OPSLEDGER_SMTP_URL`) with aiosmtplib.

The message has a plain-text part (the rendered body) and an HTML part (the same text,
escaped, line breaks kept), is from `OPSLEDGER_MAIL_FROM`, and has a Message-ID made from the
job and step, the same on every attempt, so a receiver can drop a repeat.

What a ticket's text can do is bounded: `to` is a comma-separated list of addresses, each
rendered on its own (a display name, `Name <{{ addr }}>`, is dropped unrendered), and each must
render to exactly one address, so a value can never add a recipient; at most MAX_RECIPIENTS.
The subject may hold no control character and no encoded word (`=?` is broken), so it can never
become a header line; control characters other than tab and line breaks leave the body.

A password is sent only over TLS: `smtps://`, or STARTTLS, which a URL with a user requires
unless it says `?starttls=0`. No SMTP configured, a malformed URL (its error never quotes it),
a refused recipient or a permanent (5xx) answer fail the step for good; a lost connection, a
timeout or a transient (4xx) answer, for any recipient, is retried (the recipients that took it
get it again, with the same Message-ID)."""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any, Final
from urllib.parse import parse_qs, unquote, urlsplit

import aiosmtplib

from libs.contracts.rules import EmailParams
from libs.templates import TemplateFailed, render
from services.executor.actions.base import Action, ActionContext, StepFailed

MAX_RECIPIENTS: Final = 20
PORTS: Final = {"smtp": 25, "smtps": 465}
MALFORMED: Final = (
    "OPSLEDGER_SMTP_URL is malformed: smtp://[user:pass@]host[:port] or smtps://, with reserved "
    "characters (/ ? # @ :) in the user or password percent-encoded"
)
_ADDRESS: Final = re.compile(
    r"[^\s@<>()\[\],;:\"\\]+@[^\s@<>()\[\],;:\"\\]+\.[^\s@<>()\[\],;:\"\\]+"
)
_ANGLED: Final = re.compile(r"<([^<>]*)>\s*$", re.DOTALL)
_CONTROLS: Final = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


@dataclass(frozen=True)
class SmtpServer:
    host: str
    port: int
    username: str | None
    password: str | None
    use_tls: bool
    start_tls: bool | None
    """True: required; False: never; None: when the server offers it."""


def smtp_server(url: str) -> SmtpServer:
    """The server an `OPSLEDGER_SMTP_URL` names; ValueError(MALFORMED) when it names none (the
    message never repeats the URL, which holds the password)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise ValueError(MALFORMED) from None
    if parts.scheme not in PORTS or not parts.hostname:
        raise ValueError(MALFORMED)
    if "@" in parts.path + parts.query + parts.fragment or parts.path not in ("", "/"):
        raise ValueError(MALFORMED)  # a password with a bare / ? or # ends the host early
    asked = parse_qs(parts.query).get("starttls", [""])[-1].lower()
    start_tls: bool | None = None
    if asked in ("1", "true", "yes"):
        start_tls = True
    elif asked in ("0", "false", "no"):
        start_tls = False
    elif parts.username:
        start_tls = True  # a password never goes out in clear unless the URL says so
    use_tls = parts.scheme == "smtps"
    return SmtpServer(
        host=parts.hostname,
        port=port or PORTS[parts.scheme],
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        use_tls=use_tls,
        start_tls=None if use_tls else start_tls,
    )


def _items(template: str) -> list[str]:
    """The comma-separated items of a `to` template (commas inside `{{ }}` do not split)."""
    items, depth, start = [], 0, 0
    for i, ch in enumerate(template):
        if template.startswith("{{", i):
            depth += 1
        elif template.startswith("}}", i) and depth:
            depth -= 1
        elif ch == "," and depth == 0:
            items.append(template[start:i])
            start = i + 1
    items.append(template[start:])
    return [item.strip() for item in items if item.strip()]


def recipients(template: str, values: Mapping[str, Any]) -> list[str]:
    """The addresses of a `to` template, each item rendered on its own; StepFailed when an item
    does not render to exactly one address."""
    found: list[str] = []
    for item in _items(template):
        angled = _ANGLED.search(item)
        try:
            address = render(angled.group(1) if angled else item, values).strip()
        except TemplateFailed as exc:
            raise StepFailed(
                f"a template of email failed: {exc.message}", retryable=False
            ) from None
        if not _ADDRESS.fullmatch(address):
            raise StepFailed(f"{address[:200]!r} is not one email address", retryable=False)
        local, _, domain = address.rpartition("@")
        if not local.isascii():
            raise StepFailed(f"{address!r}: a non-ASCII mailbox name", retryable=False)
        try:
            found.append(f"{local}@{domain.encode('idna').decode('ascii')}")
        except UnicodeError:
            raise StepFailed(f"{address!r}: not a valid domain", retryable=False) from None
    if not found:
        raise StepFailed("the email has no recipient", retryable=False)
    if len(found) > MAX_RECIPIENTS:
        raise StepFailed(f"at most {MAX_RECIPIENTS} recipients per email", retryable=False)
    return found


def safe_subject(subject: str) -> str:
    if _CONTROLS.search(subject) or "\r" in subject or "\n" in subject:
        raise StepFailed("the email's subject contains a line break or a control character",
                         retryable=False)  # fmt: skip
    return subject.replace("=?", "=\u200b?")  # an encoded word would decode to a line break


def html_part(text: str) -> str:
    paragraphs = html.escape(text).replace("\r\n", "\n").split("\n")
    return "<!doctype html><html><body><p>" + "<br>\n".join(paragraphs) + "</p></body></html>"


def message(
    params: EmailParams, context: ActionContext, sender: str, to: list[str]
) -> EmailMessage:
    msg = EmailMessage()
    try:
        msg["From"] = sender
        msg["To"] = ", ".join(to)
        msg["Subject"] = safe_subject(params.subject)
    except (ValueError, IndexError) as exc:
        raise StepFailed(f"the email's headers are not valid: {exc}", retryable=False) from None
    if any(c in str(msg["Subject"]) for c in "\r\n"):  # defence in depth: as the library reads it
        raise StepFailed("the email's subject would hold a line break", retryable=False)
    msg["Message-ID"] = f"<job-{context.job_id}.step-{context.step}@opsledger>"
    body = _CONTROLS.sub("", params.body)
    msg.set_content(body)
    msg.add_alternative(html_part(body), subtype="html")
    return msg


async def run(params: EmailParams, context: ActionContext) -> dict[str, Any]:
    settings = context.deps.settings
    if settings.smtp_url is None:
        raise StepFailed("email is not configured: set OPSLEDGER_SMTP_URL", retryable=False)
    try:
        server = smtp_server(settings.smtp_url.get_secret_value())
    except ValueError as exc:
        raise StepFailed(str(exc), retryable=False) from None
    to = recipients(params.to, context.values)
    msg = message(params, context, settings.mail_from, to)
    try:
        refused, _ = await aiosmtplib.send(
            msg,
            recipients=to,
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
        transient = any(400 <= r.code < 500 for r in exc.recipients)
        raise StepFailed(
            f"the mail server refused every recipient ({said})", retryable=transient
        ) from None
    except aiosmtplib.SMTPResponseException as exc:
        permanent = 500 <= exc.code < 600
        raise StepFailed(
            f"the mail server answered {exc.code} {exc.message}", retryable=not permanent
        ) from None
    except aiosmtplib.SMTPNotSupported as exc:  # no STARTTLS, AUTH or SMTPUTF8 where needed
        raise StepFailed(f"the mail server cannot: {exc}", retryable=False) from None
    except (aiosmtplib.SMTPException, OSError) as exc:
        raise StepFailed(f"{server.host}:{server.port}: {type(exc).__name__}: {exc}") from None
    for address, answer in refused.items():
        if 400 <= answer.code < 500:  # for now: try again (the others get it again, same id)
            raise StepFailed(f"the mail server deferred {address}: {answer.code} {answer.message}")
    accepted = [a for a in to if a not in refused]
    return {"message_id": msg["Message-ID"], "accepted": accepted, "refused": sorted(refused)}


ACTION = Action(params=EmailParams, run=run, renders_itself=frozenset({"to"}))
