"""Build the pure policy snapshot from the database as of one instant.

Six set-based queries, one per kind of thing: roles, entitlements, the inclusion and
role -> entitlement links valid at the instant, the SoD rules and their items. Enabled and
disabled rules are both carried; evaluation skips the disabled ones.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from idgov.models.catalog import (
    Entitlement,
    Role,
    RoleEntitlement,
    RoleInclusion,
    SodRule,
    SodRuleItem,
)
from idgov.policy.snapshot import (
    EntitlementNode,
    InclusionEdge,
    ItemRef,
    PolicySnapshot,
    RoleEntitlementEdge,
    RoleNode,
    SodRuleSpec,
    make_snapshot,
)


def _valid_at(model: Any, at: datetime) -> Any:
    return and_(model.valid_from <= at, or_(model.valid_until.is_(None), model.valid_until > at))


def build_snapshot(session: Session, *, as_of: datetime) -> PolicySnapshot:
    """The catalog as policy sees it at ``as_of``: links valid then, every role and rule."""
    roles = [RoleNode(id=i, name=n, kind=k) for i, n, k in
             session.execute(select(Role.id, Role.name, Role.kind))]
    entitlements = [
        EntitlementNode(id=i, name=n, application_id=a, native_id=x, risk=r, privileged=p)
        for i, n, a, x, r, p in session.execute(
            select(Entitlement.id, Entitlement.name, Entitlement.application_id,
                   Entitlement.native_id, Entitlement.risk, Entitlement.privileged))
    ]
    inclusions = [
        InclusionEdge(parent_id=p, child_id=c, link_id=i)
        for i, p, c in session.execute(
            select(RoleInclusion.id, RoleInclusion.parent_role_id, RoleInclusion.child_role_id)
            .where(_valid_at(RoleInclusion, as_of)))
    ]
    grants = [
        RoleEntitlementEdge(role_id=r, entitlement_id=e, link_id=i)
        for i, r, e in session.execute(
            select(RoleEntitlement.id, RoleEntitlement.role_id, RoleEntitlement.entitlement_id)
            .where(_valid_at(RoleEntitlement, as_of)))
    ]
    sides: dict[Any, dict[str, set[ItemRef]]] = {}
    for rule_id, side, role_id, ent_id in session.execute(
            select(SodRuleItem.rule_id, SodRuleItem.side, SodRuleItem.role_id,
                   SodRuleItem.entitlement_id)):
        ref = (ItemRef("role", role_id) if role_id is not None
               else ItemRef("entitlement", ent_id))  # type: ignore[arg-type]  # xor in schema
        sides.setdefault(rule_id, {"a": set(), "b": set()})[side].add(ref)
    rules = [
        SodRuleSpec(id=i, name=n, severity=s, exception_allowed=x, enabled=on,
                    side_a=frozenset(sides.get(i, {}).get("a", ())),
                    side_b=frozenset(sides.get(i, {}).get("b", ())))
        for i, n, s, x, on in session.execute(
            select(SodRule.id, SodRule.name, SodRule.severity, SodRule.exception_allowed,
                   SodRule.enabled))
    ]
    return make_snapshot(as_of=as_of, roles=roles, entitlements=entitlements,
                         inclusions=inclusions, role_entitlements=grants, sod_rules=rules)
