"""People commands: load, decide, append. The people projection is applied in the same
transaction (read-your-writes inside this service); every command answers with the streams it
wrote, so the gateway can bring its own read model up to them before it answers.

One class per concern, joined here: accounts (register, login, sessions), API tokens, and the
team (roles, deactivation)."""

from __future__ import annotations

from services.people.accounts import AccountCommands
from services.people.team import TeamCommands
from services.people.tokens import TokenCommands


class PeopleCommands(AccountCommands, TokenCommands, TeamCommands):
    """The write side of the people service, bound to a running service's dependencies."""
