"""What every service shares: envelope, catalog, store, relay, bus, runtime, timers."""
