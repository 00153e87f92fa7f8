"""The event catalog: one module per producing service; importing it registers every type."""

from libs.events.catalog import approvals as approvals
from libs.events.catalog import executor as executor
from libs.events.catalog import notifications as notifications
from libs.events.catalog import people as people
from libs.events.catalog import rules as rules
from libs.events.catalog import tickets as tickets
from libs.events.catalog import timers as timers

__all__ = ["approvals", "executor", "notifications", "people", "rules", "tickets", "timers"]
