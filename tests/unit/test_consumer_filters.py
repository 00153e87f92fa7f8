"""What the bus sends a consumer: its category's events, or, for an `exact` consumer of one
type, that type's alone (so a consumer of a rare job event is not sent every job event)."""

from __future__ import annotations

import pytest

from libs.events.consumers import Consumer, HandlerContext
from libs.events.registry import DomainEvent
from libs.events.settings import Settings
from services.approvals.app import SERVICE as APPROVALS
from services.executor.app import SERVICE as EXECUTOR

SETTINGS = Settings(namespace="ns")


async def _noop(_ctx: HandlerContext, _event: DomainEvent) -> None:
    return None


def test_a_consumer_is_sent_its_category_and_an_exact_one_its_type_only() -> None:
    category = Consumer(name="c", handlers={"job.queued": _noop, "job.started": _noop})
    assert category.subject_filter(SETTINGS) == "ns.ev.job.>"
    exact = Consumer(name="e", handlers={"job.approval_requested": _noop}, exact=True)
    assert exact.subject_filter(SETTINGS) == "ns.ev.job.approval_requested"
    spanning = Consumer(name="s", handlers={"job.queued": _noop, "ticket.created": _noop})
    assert spanning.subject_filter(SETTINGS) == "ns.ev.>"


def test_an_exact_consumer_of_two_types_is_refused() -> None:
    two = Consumer(name="x", handlers={"job.queued": _noop, "job.started": _noop}, exact=True)
    with pytest.raises(ValueError, match="exactly one type"):
        two.subject_filter(SETTINGS)


def test_no_consumer_of_the_gate_is_sent_every_event() -> None:
    """Each consumer the approvals work added is filtered by category or by its one type."""
    for service in (APPROVALS, EXECUTOR):
        for consumer in service.consumers:
            assert consumer.subject_filter(SETTINGS) != "ns.ev.>", consumer.name
