"""The event catalog: one module per producing service; importing it registers every type."""

from libs.events.catalog import people as people
from libs.events.catalog import tickets as tickets
from libs.events.catalog import timers as timers

__all__ = ["people", "tickets", "timers"]
