"""People's pure decisions: given past events, when a command is decided, then these events
(or this refusal)."""

from __future__ import annotations

from typing import Any

import pytest

from libs.contracts.people import valid_email
from libs.events.catalog.people import (
    AdminBootstrapped,
    AdminGranted,
    AdminRevoked,
    RoleName,
    UserPasswordSet,
    UserRegistered,
    UserRoleChanged,
)
from libs.events.errors import ServiceError
from services.people.domain import (
    UserState,
    decide_role_change,
    email_stream,
    fold_admins,
    fold_user,
    registration,
)


def user(user_id: str, role: RoleName = "requester") -> UserState:
    state = fold_user(
        [UserRegistered(user_id=user_id, email=f"{user_id}@x.io", name=user_id, role=role)]
    )
    assert state is not None
    return state


def refusal(**kwargs: Any) -> tuple[int, str]:
    with pytest.raises(ServiceError) as refused:
        decide_role_change(**kwargs)
    return refused.value.status, refused.value.code


def test_the_admin_set_folds_bootstrap_grants_and_revocations() -> None:
    events = [
        AdminBootstrapped(user_id="a"),
        AdminGranted(user_id="b"),
        AdminGranted(user_id="c"),
        AdminRevoked(user_id="a"),
    ]
    assert fold_admins(events) == {"b", "c"}


def test_a_user_folds_to_their_latest_role() -> None:
    events = [
        UserRegistered(user_id="u", email="u@x.io", name="U", role="requester"),
        UserPasswordSet(user_id="u", password_hash="$argon2id$v=19$m=65536,t=3,p=4$x$y"),
        UserRoleChanged(user_id="u", role="operator", previous_role="requester"),
    ]
    assert fold_user(events) == UserState("u", "u@x.io", "U", "operator")


def test_registration_keeps_the_password_hash_out_of_user_registered() -> None:
    registered, password = registration(
        user_id="u", email=" U@X.io", name="U", password_hash="$argon2id$h", first_admin=True
    )
    assert registered == UserRegistered(user_id="u", email="u@x.io", name="U", role="admin")
    assert password == UserPasswordSet(user_id="u", password_hash="$argon2id$h")


def test_an_admin_cannot_change_their_own_role() -> None:
    admins = frozenset({"a", "b"})
    assert refusal(actor_id="a", user=user("a", "admin"), role="operator", admins=admins) == (
        409,
        "CANNOT_CHANGE_OWN_ROLE",
    )


def test_the_last_admin_cannot_be_demoted_even_by_a_stale_admin() -> None:
    assert refusal(
        actor_id="b", user=user("a", "admin"), role="requester", admins=frozenset({"a"})
    ) == (409, "LAST_ADMIN")


def test_someone_not_in_the_admin_set_cannot_change_roles() -> None:
    assert refusal(actor_id="b", user=user("c"), role="operator", admins=frozenset({"a"})) == (
        403,
        "FORBIDDEN",
    )


def test_demoting_one_of_two_admins_revokes_it_in_the_admin_set() -> None:
    change = decide_role_change(
        actor_id="a", user=user("b", "admin"), role="operator", admins=frozenset({"a", "b"})
    )
    assert change.user_events == [
        UserRoleChanged(user_id="b", role="operator", previous_role="admin")
    ]
    assert change.admin_events == [AdminRevoked(user_id="b")]


def test_promoting_to_admin_grants_it_in_the_admin_set() -> None:
    change = decide_role_change(
        actor_id="a", user=user("b", "operator"), role="admin", admins=frozenset({"a"})
    )
    assert change.admin_events == [AdminGranted(user_id="b")]


def test_requester_to_operator_leaves_the_admin_set_alone() -> None:
    change = decide_role_change(
        actor_id="a", user=user("b"), role="operator", admins=frozenset({"a"})
    )
    assert change.admin_events == []
    assert len(change.user_events) == 1


def test_setting_the_same_role_changes_nothing() -> None:
    change = decide_role_change(
        actor_id="a", user=user("b"), role="requester", admins=frozenset({"a"})
    )
    assert (change.user_events, change.admin_events) == ([], [])


@pytest.mark.parametrize(
    ("email", "ok"),
    [
        ("a@example.com", True),
        ("first.last+tag@sub.example.co", True),
        ("a@b", False),
        ("@example.com", False),
        ("a@@example.com", False),
        ("a b@example.com", False),
        ("a@example..com", False),
        ("a" * 65 + "@example.com", False),
    ],
)
def test_email_shape(email: str, ok: bool) -> None:
    assert valid_email(email) is ok


def test_the_email_claim_stream_holds_no_address_and_ignores_case() -> None:
    assert email_stream("Ann@Example.com ") == email_stream("ann@example.com")
    assert "ann" not in email_stream("ann@example.com")
