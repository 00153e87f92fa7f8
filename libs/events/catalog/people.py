"""Events of people, sessions and API tokens, written by the people service (services/people/).

Streams: `user-<id>` (registration, password, role, deactivation), `email-<sha256 of the
normalised email>` (the claim that makes an email unique), `people-admins` (the active admins:
its first event decides the first admin, its version serialises every change of the set; a
deactivated admin leaves it, a reactivated one rejoins it), `session-<id>` and `token-<id>`.
Every type is in the `user.` category so the projections of them (the people service's own,
the gateway's authentication read model, the tickets service's staff list) subscribe to these
and nothing else.

No raw password, session secret or token is ever stored: passwords as argon2 hashes, session
secrets and tokens (high-entropy random values) as SHA-256 hex. The argon2 hash lives in
`user.password_set` on purpose: the log is internal, and keeping it in its own event type keeps
it out of `user.registered`, which other services consume; only the people service projects it.
Every hash of a secret is marked SECRET, so it is redacted on every way out of the system.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field

from libs.events.registry import SECRET, DomainEvent, event, upcaster

RoleName = Literal["requester", "operator", "admin"]
Scope = Literal["api", "ingest"]
SessionEndReason = Literal["logout", "revoked"]


@event("user.registered")
class UserRegistered(DomainEvent):
    user_id: str
    email: str
    name: str
    role: RoleName


@event("user.role_changed")
class UserRoleChanged(DomainEvent):
    user_id: str
    role: RoleName
    previous_role: RoleName


@event("user.password_set")
class UserPasswordSet(DomainEvent):
    """The user's password, as an argon2 hash (PHC string), never the password itself."""

    user_id: str
    password_hash: Annotated[str, SECRET] = Field(pattern=r"^\$argon2")


@event("user.email_claimed")
class UserEmailClaimed(DomainEvent):
    """First event of `email-<email_hash>`: appending it with NO_STREAM makes the email unique."""

    email_hash: str
    user_id: str


@event("user.admin_bootstrapped")
class AdminBootstrapped(DomainEvent):
    """First event of `people-admins`: the first user to register, admin exactly once."""

    user_id: str


@event("user.admin_granted")
class AdminGranted(DomainEvent):
    user_id: str


@event("user.admin_revoked")
class AdminRevoked(DomainEvent):
    user_id: str


@event("user.session_started")
class SessionStarted(DomainEvent):
    """A login. `secret_hash` is the SHA-256 hex of the secret half of the session cookie."""

    session_id: str
    user_id: str
    secret_hash: Annotated[str, SECRET]
    expires_at: datetime


@event("user.session_ended")
class SessionEnded(DomainEvent):
    session_id: str
    user_id: str
    reason: SessionEndReason


@event("user.token_created", version=2)
class TokenCreated(DomainEvent):
    """An API token. `token_hash` is the SHA-256 hex of the whole token string. v2 added
    `expires_at` (None: the token lasts until revoked, as every v1 token does)."""

    token_id: str
    user_id: str
    name: str
    scopes: list[Scope]
    token_hash: Annotated[str, SECRET]
    expires_at: datetime | None


@upcaster("user.token_created", from_version=1)
def _token_created_v1_to_v2(data: dict[str, Any]) -> dict[str, Any]:
    return {**data, "expires_at": None}


@event("user.token_revoked")
class TokenRevoked(DomainEvent):
    token_id: str
    user_id: str


@event("user.deactivated")
class UserDeactivated(DomainEvent):
    """An admin stopped this user: every session and token of theirs ends with this event (the
    projections end them), login is refused; their history stays. Who did it is the actor."""

    user_id: str


@event("user.reactivated")
class UserReactivated(DomainEvent):
    """The user may sign in again; sessions and tokens ended by the deactivation stay ended."""

    user_id: str
