"""The one map from stored event types to rule triggers, and what each trigger lets a rule read.

For every trigger of the contract (`TriggerName`): the event type(s) that fire it, the options a
rule may set on it (`from`/`to`, `kind`, `after`) and how they filter, the `trigger.<key>`
context taken from the event, and which condition paths exist for it. A service that brings a
trigger's event (SLA timers, ingest, the analyzer, approvals) changes only this table; until then
the trigger's future type name is listed in `PENDING_EVENT_TYPES`, rules on it validate, and they
fire once events of that type are stored.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final

from libs.contracts.rules import TriggerIn, TriggerName
from libs.events.conditions import parse_duration
from libs.events.envelope import Envelope, stream_category

TICKET_PATHS: Final = frozenset(
    {"type", "title", "status", "priority", "tags", "assignee_id", "requester_id"}
)
"""Ticket paths of conditions (plus `fields.<key>`): the ticket right after the event."""
TEMPLATE_ROOTS: Final = frozenset({"ticket", "trigger", "rule", "job"})
"""Variables every template may use (plus a trigger's `roots`)."""
PENDING_EVENT_TYPES: Final = frozenset(
    {"sla.warning", "sla.breached", "ticket.stale", "alert.received", "incident.analyzed"}
)
"""Types that fire a trigger but that no service writes yet (no catalog class)."""


@dataclass(frozen=True)
class Trigger:
    """One trigger: what fires it and what a rule on it may read."""

    name: TriggerName
    event_types: frozenset[str]
    context_fields: Mapping[str, str] = field(default_factory=dict)
    """`trigger.<key>` -> the key of the event's data it is read from."""
    stream_key: str | None = None
    """A `trigger.<key>` holding the event's stream id without its category (a job's id)."""
    options: frozenset[str] = frozenset()
    """Options of `TriggerIn` a rule may set; each filters on the `trigger.<same key>`."""
    required: frozenset[str] = frozenset()
    on_ticket: bool = True
    """Whether the event concerns a ticket, so ticket paths exist."""
    roots: frozenset[str] = frozenset()
    """Other roots conditions and templates may read below (`alert`, `incident`)."""
    event_root: str | None = None
    """A root filled with the event's own data (the alert of `alert.received`)."""
    automated: bool = False
    """Its events are always written by automation (a job's dead letter), so a rule on it
    must opt in with `on_automation` (and the depth limit stops a dead letter loop)."""

    @property
    def context_keys(self) -> frozenset[str]:
        keys = set(self.context_fields)
        if self.stream_key is not None:
            keys.add(self.stream_key)
        return frozenset(keys)

    def context(self, event: Envelope) -> dict[str, Any]:
        """The `trigger` context of `event`: `{"from": ..., "to": ...}` for a status change."""
        found = {key: event.data.get(source) for key, source in self.context_fields.items()}
        if self.stream_key is not None:
            found[self.stream_key] = event.stream_id.partition("-")[2]
        return found

    def accepts(self, trigger: TriggerIn, context: Mapping[str, Any]) -> bool:
        """Whether the rule's trigger options (from/to, kind, after) hold for this context."""
        for option in self.options:
            wanted = getattr(trigger, "from_" if option == "from" else option)
            if wanted is None:
                continue
            actual = context.get(option)
            if option == "after":
                if not isinstance(actual, str) or parse_duration(actual) != parse_duration(wanted):
                    return False
            elif actual != wanted:
                return False
        return True

    def path_problem(self, path: str) -> str | None:
        """Why the condition path cannot exist for this trigger; None if it can."""
        head, _, rest = path.partition(".")
        if head == "trigger":
            if rest in self.context_keys:
                return None
            known = ", ".join(f"trigger.{k}" for k in sorted(self.context_keys)) or "none"
            return f"{self.name} has no {path!r} (its trigger context: {known})"
        if head in self.roots and rest:
            return None
        if self.on_ticket and ((head in TICKET_PATHS and not rest) or (head == "fields" and rest)):
            if head == "fields" and "." in rest:
                return f"{path!r} cannot exist: a ticket field holds a value, not an object"
            return None
        return f"{path!r} cannot exist for trigger {self.name} (paths: {self.describe_paths()})"

    def describe_paths(self) -> str:
        paths = [*sorted(TICKET_PATHS), "fields.<key>"] if self.on_ticket else []
        paths += [f"trigger.{k}" for k in sorted(self.context_keys)]
        paths += [f"{root}.<key>" for root in sorted(self.roots)]
        return ", ".join(paths)

    def template_roots(self) -> frozenset[str]:
        return TEMPLATE_ROOTS | self.roots


def _by(**extra: str) -> dict[str, str]:
    return {**extra, "by": "by"}


_TICKET_STATUS: Final = {"from": "from_status", "to": "to_status"}

TRIGGERS: Final[Mapping[TriggerName, Trigger]] = MappingProxyType(
    {
        trigger.name: trigger
        for trigger in (
            Trigger("ticket.created", frozenset({"ticket.created"})),
            Trigger(
                "ticket.status_changed",
                frozenset({"ticket.status_changed"}),
                _by(**_TICKET_STATUS),
                options=frozenset({"from", "to"}),
            ),
            Trigger(
                "ticket.priority_changed",
                frozenset({"ticket.priority_changed"}),
                _by(**{"from": "previous", "to": "priority"}),
            ),
            Trigger(
                "ticket.assigned",
                frozenset({"ticket.assigned"}),
                _by(assignee_id="assignee_id", previous_assignee_id="previous_assignee_id"),
            ),
            Trigger(
                "ticket.commented",
                frozenset({"ticket.commented"}),
                {k: k for k in ("comment_id", "author_id", "body", "internal")},
            ),
            Trigger("ticket.tagged", frozenset({"ticket.tagged"}), _by(tag="tag")),
            *(
                Trigger(
                    name,
                    frozenset({name}),
                    {k: k for k in ("kind", "policy_id", "due_at")},
                    options=frozenset({"kind"}),
                )
                for name in ("sla.warning", "sla.breached")
            ),
            Trigger(
                "ticket.stale",
                frozenset({"ticket.stale"}),
                {"after": "after", "since": "since"},
                options=frozenset({"after"}),
                required=frozenset({"after"}),
            ),
            Trigger(
                "approval.decided",
                frozenset({"ticket.approval_decided"}),
                {k: k for k in ("approval_id", "decision", "decided_by", "reason")},
            ),
            Trigger(
                "alert.received",
                frozenset({"alert.received"}),
                on_ticket=False,
                roots=frozenset({"alert", "incident"}),
                event_root="alert",
            ),
            Trigger(
                "incident.analyzed",
                frozenset({"incident.analyzed"}),
                on_ticket=False,
                roots=frozenset({"incident"}),
                event_root="incident",
            ),
            Trigger(
                "job.dead_lettered",
                frozenset({"job.dead_lettered"}),
                {k: k for k in ("rule_id", "attempts", "last_error")},
                stream_key="job_id",
                automated=True,
            ),
        )
    }
)

ANY_TEMPLATE_ROOTS: Final = frozenset().union(*(t.template_roots() for t in TRIGGERS.values()))
"""The variables a template may read under some trigger (when the rule's trigger is unknown)."""

_FIRED_BY: Final[Mapping[str, tuple[Trigger, ...]]] = MappingProxyType(
    {
        event_type: tuple(t for t in TRIGGERS.values() if event_type in t.event_types)
        for event_type in {t for trigger in TRIGGERS.values() for t in trigger.event_types}
    }
)


def triggers_of(event_type: str) -> tuple[Trigger, ...]:
    """The triggers an event of this type fires (none for most types)."""
    return _FIRED_BY.get(event_type, ())


def ticket_of(event: Envelope) -> str | None:
    """The key of the ticket an event concerns: its stream's, or the `ticket` it names."""
    if stream_category(event.stream_id) == "ticket":
        return event.stream_id.partition("-")[2]
    named = event.data.get("ticket")
    return named if isinstance(named, str) else None


def ticket_view(ticket: Mapping[str, Any]) -> dict[str, Any]:
    """The ticket paths conditions read, from the ticket as it was right after the event."""
    view = {key: ticket.get(key) for key in TICKET_PATHS}
    view["tags"] = list(ticket.get("tags") or ())
    view["fields"] = dict(ticket.get("fields") or {})
    return view


def condition_context(
    trigger: Trigger,
    event: Envelope,
    ticket: Mapping[str, Any] | None,
    related: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """What a rule's conditions are evaluated over: the ticket paths (when the trigger has a
    ticket), `trigger`, and the trigger's other roots (its event's data, or given)."""
    context: dict[str, Any] = ticket_view(ticket) if trigger.on_ticket and ticket else {}
    for root, value in (related or {}).items():
        if root in trigger.roots:
            context[root] = dict(value)
    if trigger.event_root is not None:
        context[trigger.event_root] = dict(event.data)
    context["trigger"] = trigger.context(event)
    return context
