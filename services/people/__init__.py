"""People: accounts, passwords, sessions, API tokens and roles (the people service)."""
