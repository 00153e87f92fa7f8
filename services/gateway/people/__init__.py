"""People, sessions, API tokens and roles: the gateway's own domain."""
