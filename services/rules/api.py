"""The rules service's RPC methods, one handler per method of `libs.contracts.rules`: check the
caller (admins write, staff read), run a command or a query, answer with the contract's model.

A definition arrives as raw JSON and goes through `validate_rule` whole, so every error of a
rule (its shape included) is one 422 `INVALID_RULE` naming each error's path."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Final

from libs.contracts import rules as contract
from libs.events.bus import RpcHandler, RpcRequest, reply_budget
from libs.events.contract import fit_page, serve
from libs.events.registry import DomainEvent
from libs.events.rpc_guards import Guard, admin, guarded, staff
from libs.events.runtime import Deps
from libs.rules.firing import RuleVersion
from services.rules import domain, queries
from services.rules.cursors import decode, encode
from services.rules.domain import RuleState
from services.rules.handlers import RuleCommands
from services.rules.history import evaluate, match
from services.rules.refusals import archived, forbidden, not_found
from services.rules.rpc_edge import edge
from services.rules.starters import STARTERS
from services.rules.validation import validate_rule

READ_ONLY_KEYS: Final = ("id", "version", "created_at", "updated_at")
"""Keys of a rule as read that a PATCH may carry back unchanged: they are not its definition."""
DRAFT_ID: Final = "draft"


WRITE: Final[Guard] = (admin, "only admins change rules")
READ: Final[Guard] = (staff, "only operators and admins read rules")


def by_of(req: RpcRequest) -> str:
    return req.on_behalf_of or req.actor.id


@dataclass
class RulesApi:
    """RPC methods of the rules service (one instance per running replica)."""

    deps: Deps

    def __post_init__(self) -> None:
        self.commands = RuleCommands(self.deps)

    def methods(self) -> dict[str, RpcHandler]:
        served = [
            (WRITE, serve(contract.CREATE, self.create)),
            (READ, serve(contract.GET, self.get)),
            (READ, serve(contract.LIST, self.list)),
            (WRITE, serve(contract.UPDATE, self.update)),
            (WRITE, serve(contract.ENABLE, self.enable)),
            (WRITE, serve(contract.ARCHIVE, self.archive)),
            (READ, serve(contract.VERSIONS, self.versions)),
            (WRITE, serve(contract.DRY_RUN, self.dry_run)),
            (READ, serve(contract.DIFF, self.diff)),
            (READ, serve(contract.TEMPLATES, self.templates)),
            (WRITE, serve(contract.ENABLE_TEMPLATE, self.enable_template)),
        ]
        return {name: edge(guarded(guard, answer, forbidden)) for guard, (name, answer) in served}

    @property
    def _budget(self) -> int:
        return reply_budget(self.deps.nc)

    # writes

    async def create(self, req: RpcRequest, body: contract.CreateRuleIn) -> contract.RuleOut:
        definition = validate_rule(body.definition)
        rule_id = body.id or uuid.uuid4().hex
        by = by_of(req)
        return await self.commands.run(
            rule_id,
            lambda state: domain.decide_create(
                state, rule_id=rule_id, definition=definition, by=by
            ),
            meta=req.metadata("rules"),
        )

    async def update(self, req: RpcRequest, body: contract.UpdateRuleIn) -> contract.RuleOut:
        changes = {k: v for k, v in body.changes.items() if k not in READ_ONLY_KEYS}
        by = by_of(req)

        def decide(state: RuleState | None) -> list[DomainEvent]:
            if state is None:
                raise not_found()
            if state.archived:
                raise archived(state.rule_id)
            merged = {**domain.body_json(state.body), "enabled": state.enabled, **changes}
            return domain.decide_revise(state, definition=validate_rule(merged), by=by)

        return await self.commands.run(body.id, decide, meta=req.metadata("rules"))

    async def enable(self, req: RpcRequest, body: contract.EnableRuleIn) -> contract.RuleOut:
        by = by_of(req)
        return await self.commands.run(
            body.id,
            lambda state: domain.decide_enable(state, enabled=body.enabled, by=by),
            meta=req.metadata("rules"),
        )

    async def archive(self, req: RpcRequest, body: contract.RuleIdIn) -> contract.RuleOut:
        by = by_of(req)
        return await self.commands.run(
            body.id,
            lambda state: domain.decide_archive(state, by=by),
            meta=req.metadata("rules"),
        )

    async def enable_template(
        self, req: RpcRequest, body: contract.TemplateKeyIn
    ) -> contract.RuleOut:
        """Make the template's rule (or take the one made before), apply `changes`, enable it."""
        starter = STARTERS.get(body.key)
        if starter is None:
            raise not_found("the template")
        changes = {k: v for k, v in (body.changes or {}).items() if k not in READ_ONLY_KEYS}
        by = by_of(req)

        def decide(state: RuleState | None) -> list[DomainEvent]:
            if state is None:
                raw = {**starter.definition, **changes, "enabled": True}
                definition = validate_rule(raw)
                return domain.decide_create(
                    None, rule_id=starter.rule_id, definition=definition, by=by
                )
            if state.archived:
                raise archived(state.rule_id)
            merged = {**domain.body_json(state.body), **changes, "enabled": True}
            return domain.decide_revise(state, definition=validate_rule(merged), by=by)

        return await self.commands.run(starter.rule_id, decide, meta=req.metadata("rules"))

    # reads

    async def templates(self, req: RpcRequest, body: contract.NoArgs) -> contract.TemplateList:
        items = []
        for starter in STARTERS.values():
            made = await queries.rule(self.deps.pool, starter.rule_id)
            definition = validate_rule({**starter.definition, "enabled": False})
            items.append(
                contract.TemplateOut(
                    key=starter.key,
                    rule_id=starter.rule_id,
                    description=starter.description,
                    definition=contract.RuleBody.model_validate(domain.body_json(definition)),
                    enabled=made is not None and made.enabled,
                )
            )
        return contract.TemplateList(items=items)

    async def get(self, req: RpcRequest, body: contract.RuleIdIn) -> contract.RuleOut:
        found = await queries.rule(self.deps.pool, body.id)
        if found is None:
            raise not_found()
        return found

    async def list(self, req: RpcRequest, body: contract.ListRulesIn) -> contract.RulePage:
        after = decode(body.cursor, "after", str) if body.cursor else None
        found = await queries.rules(self.deps.pool, after=after, limit=body.limit + 1)
        page = fit_page(found[: body.limit], budget=self._budget)
        more = len(page) < len(found)
        return contract.RulePage(
            items=page, next_cursor=encode("after", page[-1].id) if more else None
        )

    async def versions(
        self, req: RpcRequest, body: contract.VersionsIn
    ) -> contract.RuleVersionPage:
        if await queries.rule(self.deps.pool, body.id) is None:
            raise not_found()
        after = decode(body.cursor, "after", int) if body.cursor else 0
        found = await queries.versions(self.deps.pool, body.id, after=after, limit=body.limit + 1)
        page = fit_page(found[: body.limit], budget=self._budget)
        more = len(page) < len(found)
        cursor = encode("after", page[-1].version) if more else None
        return contract.RuleVersionPage(items=page, next_cursor=cursor)

    async def dry_run(self, req: RpcRequest, body: contract.DryRunIn) -> contract.DryRunOut:
        definition = validate_rule(body.rule)
        draft = RuleVersion(
            DRAFT_ID, 1, contract.RuleBody.model_validate(domain.body_json(definition))
        )
        result = await evaluate(self.deps, [draft], since=body.since)
        matches = [match(envelope, ticket, draft) for envelope, ticket, _ in result.fired]
        page = fit_page(matches, budget=self._budget - 1024) if matches else []
        return contract.DryRunOut(
            evaluated=result.evaluated,
            matches=page,
            truncated=result.truncated or len(page) < len(matches),
        )

    async def diff(self, req: RpcRequest, body: contract.DiffIn) -> contract.DiffOut:
        version_a = await queries.version(self.deps.pool, body.id, body.a)
        version_b = await queries.version(self.deps.pool, body.id, body.b)
        if version_a is None or version_b is None:
            raise not_found("that version of the rule")
        result = await evaluate(self.deps, [version_a, version_b], since=body.since)
        only_a, only_b, both = [], [], 0
        for envelope, ticket, (fired_a, fired_b) in result.fired:
            if fired_a and fired_b:
                both += 1
            elif fired_a:
                only_a.append(match(envelope, ticket, version_a))
            else:
                only_b.append(match(envelope, ticket, version_b))
        half = self._budget // 2 - 1024
        page_a = fit_page(only_a, budget=half) if only_a else []
        page_b = fit_page(only_b, budget=half) if only_b else []
        cut = len(page_a) < len(only_a) or len(page_b) < len(only_b)
        return contract.DiffOut(
            a=body.a,
            b=body.b,
            evaluated=result.evaluated,
            both=both,
            only_a=page_a,
            only_b=page_b,
            truncated=result.truncated or cut,
        )
