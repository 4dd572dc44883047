"""What generation knows before the first item: everyone's manager, state and peer group,
and per role or entitlement what its items share (reach, risk, owner, the fixed parts of
its items' context). Loaded once per campaign; ids are kept in their stored text form
(:func:`certification.writer.id_text`) so that rows are matched without a UUID per row.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Text, cast, select
from sqlalchemy.orm import Session

from certification.scoping import ItemFacts, Scope, item_in_scope
from idgov.models.application import Application
from idgov.models.catalog import Entitlement, Role
from idgov.models.identity import Identity
from idgov.policy.snapshot import PolicySnapshot, risk_rank

# The context's JSON as json.dumps writes it for the ReviewItem column.
DUMPS = json.JSONEncoder(separators=(", ", ": ")).encode
_HIGH = risk_rank("high")


@dataclass
class People:
    """Everyone's manager and state, and their (department, job code) peer group, keyed by
    the identities' stored ids."""

    manager: dict[str, str | None]
    active: set[str]
    group_of: dict[str, int | None]
    groups: dict[tuple[str, str], int]
    department: dict[str, str]

    @classmethod
    def load(cls, session: Session) -> People:
        manager: dict[str, str | None] = {}
        active: set[str] = set()
        group_of: dict[str, int | None] = {}
        groups: dict[tuple[str, str], int] = {}
        departments: dict[str, str] = {}
        for identity_id, manager_id, state, department, job_code in session.execute(
                select(cast(Identity.id, Text), cast(Identity.manager_id, Text),
                       Identity.lifecycle_state, Identity.department, Identity.job_code)):
            manager[identity_id] = manager_id
            if state == "active":
                active.add(identity_id)
            if department is not None:
                departments[identity_id] = department
                if job_code is not None:
                    group_of[identity_id] = groups.setdefault((department, job_code),
                                                              len(groups))
        return cls(manager, active, group_of, groups, departments)


def _pairs(session: Session, key: Any, value: Any) -> dict[uuid.UUID, uuid.UUID | None]:
    return {k: v for k, v in session.execute(select(key, value))}


@dataclass(frozen=True)
class ItemPlan:
    """What every item of one role or entitlement shares, ready for the row: stored ids,
    facts, and the fixed parts of the context JSON around the per-holding parts."""

    facts: ItemFacts
    in_scope: bool
    application: str | None  # the item's single application (stored id), else None
    owner: str | None  # who owns the role or entitlement (stored id)
    application_owner: str | None  # the owner of the application that reviews it
    high: bool  # risk high or above
    head: str  # '{"item": {...}, "granted": '
    middle: str  # ', "risk": ..., "privileged": ..., "sod": '


class Catalog:
    """Facts per role and entitlement (reach, risk, owner), memoised from the snapshot."""

    def __init__(self, session: Session, snapshot: PolicySnapshot, scope: Scope,
                 stored: Callable[[uuid.UUID], str]) -> None:
        self.snapshot = snapshot
        self.scope = scope
        self.stored = stored
        self.role_owner = _pairs(session, Role.id, Role.owner_id)
        self.ent_owner = _pairs(session, Entitlement.id, Entitlement.owner_id)
        self.app_owner = _pairs(session, Application.id, Application.owner_id)
        self._facts: dict[uuid.UUID, ItemFacts] = {}
        self._in_scope: dict[uuid.UUID, bool] = {}
        self._plans: dict[str, ItemPlan] = {}

    def facts(self, role_id: uuid.UUID | None, entitlement_id: uuid.UUID | None) -> ItemFacts:
        key = role_id or entitlement_id
        assert key is not None
        found = self._facts.get(key)
        if found is None:
            found = self._facts[key] = self._build(role_id, entitlement_id)
        return found

    def _build(self, role_id: uuid.UUID | None, entitlement_id: uuid.UUID | None) -> ItemFacts:
        snapshot = self.snapshot
        if role_id is not None:
            closure = snapshot.closure(role_id)
            apps = frozenset(snapshot.entitlements[e].application_id
                             for e in closure.entitlement_set if e in snapshot.entitlements)
            return ItemFacts("role", role_id, apps, closure.risk, closure.privileged,
                             self.role_owner.get(role_id))
        assert entitlement_id is not None
        node = snapshot.entitlements.get(entitlement_id)
        if node is None:  # not in the snapshot (cannot happen with a consistent catalog)
            return ItemFacts("entitlement", entitlement_id, frozenset(), "critical", False,
                             self.ent_owner.get(entitlement_id))
        return ItemFacts("entitlement", entitlement_id, frozenset((node.application_id,)),
                         node.risk, node.privileged, self.ent_owner.get(entitlement_id))

    def in_scope(self, role_id: uuid.UUID | None, entitlement_id: uuid.UUID | None) -> bool:
        key = role_id or entitlement_id
        assert key is not None
        found = self._in_scope.get(key)
        if found is None:
            found = self._in_scope[key] = item_in_scope(self.scope,
                                                        self.facts(role_id, entitlement_id))
        return found

    def wanted(self) -> tuple[set[uuid.UUID], set[uuid.UUID]] | None:
        """The roles and entitlements in scope, when the scope filters items (else None)."""
        scope = self.scope
        if not (scope.names_items or scope.min_risk or scope.privileged_only
                or scope.high_or_privileged):
            return None
        roles = {r for r in self.snapshot.roles if self.in_scope(r, None)}
        ents = {e for e in self.snapshot.entitlements if self.in_scope(None, e)}
        return roles, ents

    def application_of(self, facts: ItemFacts) -> uuid.UUID | None:
        """The application whose owner reviews the item: its single application, else the
        first application of the scope that it reaches."""
        if facts.application_id is not None:
            return facts.application_id
        named = sorted(facts.applications & self.scope.application_ids, key=str)
        return named[0] if named else None

    def plan(self, role: str | None, entitlement: str | None) -> ItemPlan:
        """The :class:`ItemPlan` of a role or entitlement given by stored id (memoised)."""
        key = role or entitlement
        assert key is not None
        found = self._plans.get(key)
        if found is None:
            found = self._plans[key] = self._plan(role, entitlement)
        return found

    def _plan(self, role: str | None, entitlement: str | None) -> ItemPlan:
        role_id = uuid.UUID(role) if role is not None else None
        ent_id = uuid.UUID(entitlement) if entitlement is not None else None
        facts = self.facts(role_id, ent_id)
        snapshot, stored = self.snapshot, self.stored
        app_id = self.application_of(facts)
        app_owner = self.app_owner.get(app_id) if app_id else None
        name = snapshot.role_name(facts.id) if facts.type == "role" \
            else snapshot.entitlement_name(facts.id)
        return ItemPlan(
            facts=facts, in_scope=self.in_scope(role_id, ent_id),
            application=stored(facts.application_id) if facts.application_id else None,
            owner=stored(facts.owner_id) if facts.owner_id else None,
            application_owner=stored(app_owner) if app_owner else None,
            high=risk_rank(facts.risk) >= _HIGH,
            head=f'{{"item": {DUMPS({"type": facts.type, "name": name})}, "granted": ',
            middle=f', "risk": {DUMPS(facts.risk)}, "privileged": {DUMPS(facts.privileged)}'
                   f', "sod": ')
