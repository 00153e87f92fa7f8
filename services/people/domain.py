"""People's decisions, pure: stream names, user and admin-set state, registration, role
changes, deactivation and reactivation, and who may be given an API token. No I/O (email rules
are the contract's: libs/contracts/people.py)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

from libs.contracts.people import email_hash, normalise_email
from libs.events.catalog.people import (
    AdminBootstrapped,
    AdminGranted,
    AdminRevoked,
    RoleName,
    TokenCreated,
    UserDeactivated,
    UserPasswordSet,
    UserReactivated,
    UserRegistered,
    UserRoleChanged,
)
from libs.events.errors import ServiceError, conflict, not_found
from libs.events.registry import DomainEvent

ADMINS_STREAM = "people-admins"
"""Who is admin. Its first event decides the first admin (appended with NO_STREAM); every later
change of the admin set appends here with the version it read, so such changes serialise."""


def user_stream(user_id: str) -> str:
    return f"user-{user_id}"


def session_stream(session_id: str) -> str:
    return f"session-{session_id}"


def token_stream(token_id: str) -> str:
    return f"token-{token_id}"


def email_stream(email: str) -> str:
    """An email's claim stream: its hash, so no address sits in a stream id (never erased)."""
    return f"email-{email_hash(email)}"


@dataclass(frozen=True)
class UserState:
    user_id: str
    email: str
    name: str
    role: RoleName
    active: bool = True


def account_disabled() -> ServiceError:
    return ServiceError(403, "ACCOUNT_DISABLED", "this account has been deactivated by an admin")


def evolve_user(state: UserState | None, event: DomainEvent) -> UserState | None:
    if isinstance(event, UserRegistered):
        return UserState(event.user_id, event.email, event.name, event.role)
    if state is None:
        return None
    if isinstance(event, UserRoleChanged):
        return replace(state, role=event.role)
    if isinstance(event, UserDeactivated | UserReactivated):
        return replace(state, active=isinstance(event, UserReactivated))
    return state


def fold_user(events: Iterable[DomainEvent]) -> UserState | None:
    state: UserState | None = None
    for item in events:
        state = evolve_user(state, item)
    return state


def fold_admins(events: Iterable[DomainEvent]) -> frozenset[str]:
    admins: set[str] = set()
    for item in events:
        if isinstance(item, AdminBootstrapped | AdminGranted):
            admins.add(item.user_id)
        elif isinstance(item, AdminRevoked):
            admins.discard(item.user_id)
    return frozenset(admins)


def registration(
    *, user_id: str, email: str, name: str, password_hash: str, first_admin: bool
) -> list[DomainEvent]:
    """A new user's stream: who they are, then their password (a separate, internal event)."""
    return [
        UserRegistered(
            user_id=user_id,
            email=normalise_email(email),
            name=name,
            role="admin" if first_admin else "requester",
        ),
        UserPasswordSet(user_id=user_id, password_hash=password_hash),
    ]


@dataclass(frozen=True)
class RoleChange:
    """Events for the user's stream and for the admins stream (either may be empty)."""

    user_events: list[DomainEvent]
    admin_events: list[DomainEvent]


def decide_role_change(
    *, actor_id: str, user: UserState, role: RoleName, admins: frozenset[str]
) -> RoleChange:
    """`admins` is the admin set read from ADMINS_STREAM in the deciding transaction: the last
    admin is judged on it, so two admins demoting each other cannot both succeed. A deactivated
    user's role may change; the admin set (the active admins) changes only with an active one."""
    if actor_id == user.user_id:
        raise conflict("CANNOT_CHANGE_OWN_ROLE", "an admin cannot change their own role")
    if user.role == "admin" and role != "admin" and not admins - {user.user_id}:
        raise conflict("LAST_ADMIN", "the last admin cannot be demoted", {"user_id": user.user_id})
    if actor_id not in admins:
        raise ServiceError(403, "FORBIDDEN", "only an admin may change roles")
    if role == user.role:
        return RoleChange([], [])
    user_events: list[DomainEvent] = [
        UserRoleChanged(user_id=user.user_id, role=role, previous_role=user.role)
    ]
    if not user.active:
        return RoleChange(user_events, [])
    if role == "admin":
        return RoleChange(user_events, [AdminGranted(user_id=user.user_id)])
    if user.role == "admin":
        return RoleChange(user_events, [AdminRevoked(user_id=user.user_id)])
    return RoleChange(user_events, [])


def decide_activation(
    *, actor_id: str, user: UserState, active: bool, admins: frozenset[str]
) -> RoleChange:
    """Deactivate or reactivate `user`. An active admin leaves the admin set when deactivated
    and rejoins it when reactivated; the last active admin cannot be deactivated (judged on
    `admins` as read in the deciding transaction, like a demotion)."""
    if actor_id == user.user_id:
        raise conflict("CANNOT_DEACTIVATE_SELF", "an admin cannot deactivate themselves")
    if not active and user.user_id in admins and not admins - {user.user_id}:
        message = "the last active admin cannot be deactivated"
        raise conflict("LAST_ADMIN", message, {"user_id": user.user_id})
    if actor_id not in admins:
        raise ServiceError(403, "FORBIDDEN", "only an admin may deactivate or reactivate users")
    if active == user.active:
        return RoleChange([], [])
    if not active:
        revoke: list[DomainEvent] = [AdminRevoked(user_id=user.user_id)]
        return RoleChange(
            [UserDeactivated(user_id=user.user_id)],
            revoke if user.user_id in admins else [],
        )
    grant: list[DomainEvent] = [AdminGranted(user_id=user.user_id)]
    return RoleChange(
        [UserReactivated(user_id=user.user_id)], grant if user.role == "admin" else []
    )


def decide_token(*, owner: UserState | None, created: TokenCreated) -> list[DomainEvent]:
    """A token is created for an active account only: a request authenticated just before its
    owner was deactivated and arriving after is refused, so no token outlives a deactivation
    to come back to life at a reactivation."""
    if owner is None:
        raise not_found("user")
    if not owner.active:
        raise account_disabled()
    return [created]
