"""Structured logs (structlog) for every process: key=value lines with the logger and level,
with secrets kept out (see redact_secrets)."""

from __future__ import annotations

import logging
import re

import structlog

SECRET_KEY = re.compile(r"secret|password|passwd|token|api_key|authorization|cookie", re.I)
"""Log fields with such a name carry their value only as "[redacted]"."""
INPUT_VALUE = re.compile(r"input_value=.*?, input_type=", re.S)
"""What pydantic prints of the input a ValidationError refused: an event's or a request's data
(its secret fields included), e.g. when a stored event no longer decodes and its handler fails."""
REDACTED = "[redacted]"


def redact_secrets(
    _: object, __: str, event_dict: structlog.typing.EventDict
) -> structlog.typing.EventDict:
    """Drop secret-named fields' values, and the refused input from validation errors in the
    message and the traceback (REGISTRY.redact guards what the API shows; this, what logs do)."""
    for key, value in event_dict.items():
        if isinstance(value, str) and key in ("event", "exception"):
            event_dict[key] = INPUT_VALUE.sub(f"input_value={REDACTED}, input_type=", value)
        elif SECRET_KEY.search(key) and value is not None:
            event_dict[key] = REDACTED
    return event_dict


def configure_logging(level: str = "INFO") -> None:
    processors: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        redact_secrets,  # after format_exc_info: a traceback's text is scrubbed too
    ]
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=processors,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.KeyValueRenderer(
                key_order=["timestamp", "level", "logger", "event"], drop_missing=True
            ),
        ],
    )
    handler = logging.StreamHandler()
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    structlog.configure(
        processors=[*processors, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=True,
    )
