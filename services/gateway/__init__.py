"""The gateway: the one HTTP entry point (REST API, SSE, web UI); authenticates every request."""
