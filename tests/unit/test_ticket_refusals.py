"""Every refusal code of the tickets domain has its HTTP status in the one table at the RPC edge."""

from __future__ import annotations

from typing import get_args

from services.tickets.refusals import Refusal, RefusalCode
from services.tickets.rpc_edge import STATUS, as_service_error


def test_every_refusal_code_maps_to_a_4xx_status() -> None:
    assert set(STATUS) == set(get_args(RefusalCode))
    assert all(400 <= status < 500 for status in STATUS.values())


def test_a_refusal_leaves_the_edge_with_its_code_message_and_details() -> None:
    error = as_service_error(Refusal("PENDING_APPROVAL", "locked", {"approval_id": "a1"}))
    assert (error.status, error.code, error.message, error.details) == (
        409,
        "PENDING_APPROVAL",
        "locked",
        {"approval_id": "a1"},
    )
