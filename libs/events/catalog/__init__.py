"""The event catalog: one module per producing service; importing it registers every type."""

from libs.events.catalog import timers as timers

__all__ = ["timers"]
