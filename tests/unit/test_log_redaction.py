"""Logs never print secrets: a validation error's refused input (an event's data) and fields
named like a secret are redacted, in the message and in the traceback alike."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest
import structlog
from pydantic import BaseModel, ValidationError

from libs.events.logs import configure_logging

SECRET = "hunter2"


class Webhook(BaseModel):
    url: str
    secret: str
    retries: int


@pytest.fixture
def logs() -> Iterator[io.StringIO]:
    """What the logging configuration of every process writes, captured."""
    root = logging.getLogger()
    before = (root.handlers[:], root.level)
    configure_logging("INFO")
    written = io.StringIO()
    handler = root.handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(written)
    yield written
    root.handlers[:], level = before
    root.setLevel(level)
    structlog.reset_defaults()


def _refused() -> ValidationError:
    try:
        # a missing field: pydantic shows the whole input, the secret with it
        Webhook.model_validate({"url": "x", "secret": SECRET})
    except ValidationError as exc:
        return exc
    raise AssertionError("the data was meant to be refused")


def test_a_handler_failure_on_an_event_that_no_longer_decodes_logs_no_secret(
    logs: io.StringIO,
) -> None:
    refused = _refused()
    log = logging.getLogger("consumer")
    log.warning("webhooks failed on an event (attempt 1): %r", refused)
    try:
        raise RuntimeError("handler failed") from refused
    except RuntimeError:
        log.exception("rpc webhooks.create failed")
    err = logs.getvalue()
    assert "failed on an event" in err and "rpc webhooks.create failed" in err
    assert "retries" in err  # what was wrong is still said
    assert SECRET not in err


def test_fields_named_like_secrets_are_redacted(logs: io.StringIO) -> None:
    structlog.get_logger("people").info("token created", token=SECRET, user_id="u-1")
    err = logs.getvalue()
    assert "u-1" in err
    assert SECRET not in err
