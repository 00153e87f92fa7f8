"""libs.events: the envelope, event catalog, store, relay, bus, runtime and timers every service shares."""
