"""The team, as admins manage it: changing a user's role, deactivating and reactivating them.
Each is decided on the user's stream and the admins stream and appended at the versions read,
so a concurrent change of either makes the attempt decide again on fresh state."""

from __future__ import annotations

from collections.abc import Callable

from libs.contracts.people import MemberChanged, MemberOut, Written
from libs.events.catalog.people import RoleName
from libs.events.envelope import Envelope, Metadata
from libs.events.errors import conflict, not_found
from libs.events.registry import REGISTRY
from libs.events.store import NO_STREAM, ConcurrencyError
from services.people.domain import (
    ADMINS_STREAM,
    RoleChange,
    UserState,
    decide_activation,
    decide_role_change,
    evolve_user,
    fold_admins,
    fold_user,
    user_stream,
)
from services.people.writer import Writer, written

ATTEMPTS = 5
Decide = Callable[[UserState, frozenset[str]], RoleChange]


def _member(user: UserState) -> MemberOut:
    return MemberOut(
        id=user.user_id, email=user.email, name=user.name, role=user.role, active=user.active
    )


class TeamCommands(Writer):
    async def change_role(
        self, *, actor_id: str, user_id: str, role: RoleName, meta: Metadata
    ) -> MemberChanged:
        def decide(user: UserState, admins: frozenset[str]) -> RoleChange:
            return decide_role_change(actor_id=actor_id, user=user, role=role, admins=admins)

        return await self._decide(user_id, decide, meta)

    async def set_active(
        self, *, actor_id: str, user_id: str, active: bool, meta: Metadata
    ) -> MemberChanged:
        """Deactivating ends every session and token of the user at once: the projections end
        them on `user.deactivated`, the gateway's before this answers."""

        def decide(user: UserState, admins: frozenset[str]) -> RoleChange:
            return decide_activation(actor_id=actor_id, user=user, active=active, admins=admins)

        return await self._decide(user_id, decide, meta)

    async def _decide(self, user_id: str, decide: Decide, meta: Metadata) -> MemberChanged:
        for attempt in range(1, ATTEMPTS + 1):
            try:
                return await self._decide_once(user_id, decide, meta)
            except ConcurrencyError:
                if attempt == ATTEMPTS:
                    raise conflict(
                        "CONCURRENT_UPDATE", "the team changed meanwhile; try again"
                    ) from None
        raise AssertionError("unreachable")

    async def _decide_once(self, user_id: str, decide: Decide, meta: Metadata) -> MemberChanged:
        store = self.deps.store
        async with store.transaction() as conn:
            user_events = await store.read_stream(user_stream(user_id), conn=conn)
            user = fold_user(REGISTRY.load(e) for e in user_events)
            if user is None:
                raise not_found("user")
            admin_events = await store.read_stream(ADMINS_STREAM, conn=conn)
            admins = fold_admins(REGISTRY.load(e) for e in admin_events)
            change = decide(user, admins)
            appended: list[Envelope] = []
            if change.admin_events:
                appended += await store.append(
                    ADMINS_STREAM,
                    change.admin_events,
                    expected_version=admin_events[-1].version if admin_events else NO_STREAM,
                    metadata=meta,
                    conn=conn,
                )
            if change.user_events:
                appended += await self._append(
                    conn,
                    user_stream(user_id),
                    change.user_events,
                    expected_version=user_events[-1].version,
                    meta=meta,
                )
        for event in change.user_events:
            user = evolve_user(user, event) or user
        receipt = written(appended) or [
            Written(stream_id=user_stream(user_id), version=user_events[-1].version)
        ]
        return MemberChanged(user=_member(user), written=receipt)
