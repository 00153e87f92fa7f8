"""A job's stream read as its state and as its history: the one fold every path uses (commands,
the projection, `jobs.get`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from libs.contracts.jobs import JobHistoryItem
from libs.events.db import Conn
from libs.events.envelope import Envelope
from libs.events.registry import REGISTRY, EventRegistry
from libs.events.store import EventStore
from services.executor.domain import Job, evolve

JOB_PREFIX: Final = "job-"
_SHOWN_APART: Final = frozenset({"attempt", "step", "action", "error", "last_error"})
_LEFT_OUT: Final = frozenset({"context", "actions", "approval"})
"""job.queued's payload is large and shown by the job itself; its history item names the rule."""


def job_stream(job_id: str) -> str:
    return f"{JOB_PREFIX}{job_id}"


def fold(envelopes: Sequence[Envelope], registry: EventRegistry = REGISTRY) -> Job | None:
    job: Job | None = None
    for envelope in envelopes:
        if registry.knows(envelope.type) and envelope.type.startswith("job."):
            job = evolve(
                job, registry.load(envelope), version=envelope.version, at=envelope.recorded_at
            )
    return job


async def load(
    store: EventStore, job_id: str, *, conn: Conn | None = None
) -> tuple[Job | None, list[Envelope]]:
    """The job folded from its whole stream, and the stream's events."""
    history = await store.read_stream(job_stream(job_id), conn=conn)
    return fold(history, store.registry), history


def items(
    envelopes: Sequence[Envelope], registry: EventRegistry = REGISTRY
) -> list[JobHistoryItem]:
    """Every event of the job with the state it left the job in."""
    shown: list[JobHistoryItem] = []
    job: Job | None = None
    for envelope in envelopes:
        if not (registry.knows(envelope.type) and envelope.type.startswith("job.")):
            continue
        job = evolve(
            job, registry.load(envelope), version=envelope.version, at=envelope.recorded_at
        )
        if job is None:
            continue
        data: dict[str, Any] = envelope.data
        error = data.get("error", data.get("last_error"))
        shown.append(
            JobHistoryItem(
                version=envelope.version,
                type=envelope.type,
                at=envelope.recorded_at,
                actor=envelope.metadata.actor,
                state=job.state,
                attempt=data.get("attempt", data.get("attempts")),
                step=data.get("step"),
                action=data.get("action"),
                error=error,
                detail={k: v for k, v in data.items() if k not in _SHOWN_APART | _LEFT_OUT},
            )
        )
    return shown
