"""Deactivation decided purely: given a user and the active-admin set, when an admin
deactivates or reactivates them, then these events (or this refusal)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from libs.events.catalog.people import (
    AdminGranted,
    AdminRevoked,
    RoleName,
    TokenCreated,
    UserDeactivated,
    UserReactivated,
    UserRegistered,
    UserRoleChanged,
)
from libs.events.errors import ServiceError
from services.people.domain import (
    UserState,
    decide_activation,
    decide_role_change,
    decide_token,
    fold_user,
)


def user(user_id: str, role: RoleName = "requester", *, active: bool = True) -> UserState:
    return UserState(user_id, f"{user_id}@x.io", user_id, role, active)


def refused(user_state: UserState, *, actor: str, active: bool, admins: set[str]) -> str:
    with pytest.raises(ServiceError) as refusal:
        decide_activation(actor_id=actor, user=user_state, active=active, admins=frozenset(admins))
    return refusal.value.code


def test_a_user_folds_to_inactive_and_back() -> None:
    registered = UserRegistered(user_id="u", email="u@x.io", name="u", role="requester")
    assert fold_user([registered, UserDeactivated(user_id="u")]) == user("u", active=False)
    assert fold_user(
        [registered, UserDeactivated(user_id="u"), UserReactivated(user_id="u")]
    ) == user("u")


def test_deactivating_a_requester_is_one_event_on_their_stream() -> None:
    change = decide_activation(actor_id="a", user=user("b"), active=False, admins=frozenset("a"))
    assert (change.user_events, change.admin_events) == ([UserDeactivated(user_id="b")], [])


def test_deactivating_an_admin_takes_them_out_of_the_active_admin_set() -> None:
    change = decide_activation(
        actor_id="a", user=user("b", "admin"), active=False, admins=frozenset({"a", "b"})
    )
    assert change.admin_events == [AdminRevoked(user_id="b")]


def test_reactivating_an_admin_puts_them_back_in_the_set() -> None:
    change = decide_activation(
        actor_id="a", user=user("b", "admin", active=False), active=True, admins=frozenset("a")
    )
    assert change.user_events == [UserReactivated(user_id="b")]
    assert change.admin_events == [AdminGranted(user_id="b")]


def test_the_last_active_admin_cannot_be_deactivated_even_by_a_stale_admin() -> None:
    assert refused(user("a", "admin"), actor="b", active=False, admins={"a"}) == "LAST_ADMIN"


def test_nobody_deactivates_themselves() -> None:
    assert refused(user("a", "admin"), actor="a", active=False, admins={"a", "b"}) == (
        "CANNOT_DEACTIVATE_SELF"
    )


def test_only_an_active_admin_deactivates() -> None:
    assert refused(user("c"), actor="b", active=False, admins={"a"}) == "FORBIDDEN"


def test_deactivating_twice_changes_nothing() -> None:
    change = decide_activation(
        actor_id="a", user=user("b", active=False), active=False, admins=frozenset("a")
    )
    assert (change.user_events, change.admin_events) == ([], [])


def test_promoting_a_deactivated_user_leaves_the_active_admin_set_alone() -> None:
    inactive = replace(user("b", "operator"), active=False)
    change = decide_role_change(actor_id="a", user=inactive, role="admin", admins=frozenset("a"))
    assert change.user_events == [
        UserRoleChanged(user_id="b", role="admin", previous_role="operator")
    ]
    assert change.admin_events == []


def test_a_token_is_created_for_an_active_owner_only() -> None:
    created = TokenCreated(
        token_id="t", user_id="u", name="ci", scopes=["api"], token_hash="0" * 64, expires_at=None
    )
    assert decide_token(owner=user("u"), created=created) == [created]
    with pytest.raises(ServiceError) as refusal:
        decide_token(owner=user("u", active=False), created=created)
    assert (refusal.value.status, refusal.value.code) == (403, "ACCOUNT_DISABLED")
