"""Embedded dev servers (NATS JetStream, PostgreSQL) that OpsLedger starts when no URL is set.

One import for callers; each server lives in its own module (embedded_nats, embedded_postgres)
and what they share in embedded_base."""

from __future__ import annotations

from libs.events.embedded_base import (
    LOCALHOST,
    NATS_START_TIMEOUT,
    PG_START_TIMEOUT,
    STOP_TIMEOUT,
    EmbeddedServerError,
    free_port,
    nats_server_binary,
    parent_pid,
    process_alive,
    process_start_time,
)
from libs.events.embedded_nats import EmbeddedNats
from libs.events.embedded_postgres import EmbeddedPostgres

__all__ = [
    "LOCALHOST",
    "NATS_START_TIMEOUT",
    "PG_START_TIMEOUT",
    "STOP_TIMEOUT",
    "EmbeddedNats",
    "EmbeddedPostgres",
    "EmbeddedServerError",
    "free_port",
    "nats_server_binary",
    "parent_pid",
    "process_alive",
    "process_start_time",
]
