"""What every action gets and gives: its context (the job step it is, the service's
dependencies, the outbound HTTP client) and StepFailed, which says whether a retry can mend it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import httpx

from libs.contracts.rules import ActionParams
from libs.events.envelope import Envelope
from libs.events.runtime import Deps

P = TypeVar("P", bound=ActionParams)


class StepFailed(Exception):
    """The step did not do what it should; `retryable` is False when no retry can mend it."""

    def __init__(self, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.message = message
        self.retryable = retryable


@dataclass(frozen=True)
class ActionContext:
    """One step of one attempt of a job."""

    deps: Deps
    job_id: str
    step: int
    attempt: int
    ticket: str | None
    queued: Envelope
    """The job's `job.queued`: what the ticket events it causes name as their cause."""
    values: Mapping[str, Any]
    """The template context the job was fired with."""
    http: httpx.AsyncClient
    timeout_s: float

    @property
    def idempotency_key(self) -> str:
        """The same for every attempt of this step: a repeat is recognised and dropped."""
        return f"job-{self.job_id}/step-{self.step}"

    def need_ticket(self) -> str:
        if self.ticket is None:
            raise StepFailed("this action acts on a ticket, and the job has none", retryable=False)
        return self.ticket


@dataclass(frozen=True)
class Action(Generic[P]):
    params: type[P]
    run: Callable[[P, ActionContext], Awaitable[dict[str, Any]]]
    renders_itself: frozenset[str] = frozenset()
    """Template params the action renders itself, piece by piece (email's `to`: each address
    apart, so a value can never add one); the others arrive rendered."""
