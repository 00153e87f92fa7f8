"""The rule templates that ship with OpsLedger, disabled: one call
(`POST /api/v1/rules/templates/{key}`) makes the template's rule (`template-<key>`) and enables
it, with any top-level keys given replacing the template's (a schedule's id, say)."""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final


@dataclass(frozen=True)
class Starter:
    key: str
    description: str
    definition: dict[str, Any]
    """The rule as `rules.create` takes it (raw JSON), without `enabled`."""

    @property
    def rule_id(self) -> str:
        return f"template-{self.key}"


def _eq(field: str, value: object) -> dict[str, object]:
    return {"field": field, "op": "eq", "value": value}


_PRODUCTION_DEPLOYMENT: Final = {
    "all": [_eq("type", "deployment"), _eq("fields.environment", "production")]
}

STARTERS: Final = MappingProxyType(
    {
        starter.key: starter
        for starter in (
            Starter(
                "urgent-incidents-to-on-call",
                "Assign urgent incidents to whoever is on call (set the schedule's id).",
                {
                    "name": "Urgent incidents go to on-call",
                    "trigger": {"event": "ticket.created"},
                    "conditions": {"all": [_eq("type", "incident"), _eq("priority", "urgent")]},
                    "actions": [{"type": "assign", "params": {"on_call": "primary"}}],
                },
            ),
            Starter(
                "tag-production-deployments",
                "Tag every new production deployment request `prod`.",
                {
                    "name": "Tag production deployments",
                    "trigger": {"event": "ticket.created"},
                    "conditions": _PRODUCTION_DEPLOYMENT,
                    "actions": [{"type": "add_tag", "params": {"tag": "prod"}}],
                },
            ),
            Starter(
                "escalate-priority-on-sla-breach",
                "Raise a ticket to urgent when its resolution SLA is breached.",
                {
                    "name": "Escalate priority on SLA breach",
                    "trigger": {"event": "sla.breached", "kind": "resolution"},
                    "actions": [{"type": "set_priority", "params": {"priority": "urgent"}}],
                },
            ),
            Starter(
                "close-resolved-after-7-days",
                "Close a resolved ticket that has had no activity for 7 days.",
                {
                    "name": "Close resolved tickets after 7 days",
                    "trigger": {"event": "ticket.stale", "after": "7d"},
                    "conditions": _eq("status", "resolved"),
                    "actions": [{"type": "set_status", "params": {"status": "closed"}}],
                },
            ),
            Starter(
                "production-deployments-need-approval",
                "Start work on a production deployment only once an admin approves it.",
                {
                    "name": "Production deployments need approval",
                    "trigger": {"event": "ticket.created"},
                    "conditions": _PRODUCTION_DEPLOYMENT,
                    "actions": [
                        {"type": "add_tag", "params": {"tag": "prod"}},
                        {"type": "set_status", "params": {"status": "in_progress"}},
                    ],
                    "approval": {
                        "approvers": {"roles": ["admin"]},
                        "quorum": 1,
                        "expires_in": "7d",
                    },
                },
            ),
        )
    }
)
