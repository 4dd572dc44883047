"""Build the pure policy snapshot from the database as of one instant.

Six set-based queries, one per kind of thing: roles, entitlements, the inclusion and
role -> entitlement links valid at the instant, the SoD rules and their items. Enabled and
disabled rules are both carried; evaluation skips the disabled ones.

:func:`current_snapshot` keeps the last snapshot built per database and hands it out again
while the policy revision (``PolicyRevision``, bumped in the same transaction as any change
of roles, entitlements, links or SoD rules) is unchanged and no composition link has started
or ended since: a policy decision then pays no database read of the catalog.
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, or_, select, union_all
from sqlalchemy.orm import Session

from idgov.models.catalog import (
    POLICY_CHANGED,
    Entitlement,
    PolicyRevision,
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
        EntitlementNode(id=i, name=n, application_id=a, native_id=x, risk=r, privileged=p,
                        data_classification=c)
        for i, n, a, x, r, p, c in session.execute(
            select(Entitlement.id, Entitlement.name, Entitlement.application_id,
                   Entitlement.native_id, Entitlement.risk, Entitlement.privileged,
                   Entitlement.data_classification))
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


@dataclass(frozen=True)
class _Cached:
    key: tuple[uuid.UUID, int]
    snapshot: PolicySnapshot
    built_at: datetime
    good_until: datetime | None  # the next instant a composition link starts or ends


_CACHE: dict[str, _Cached] = {}
_CACHE_LOCK = threading.Lock()


def _next_link_change(session: Session, after: datetime) -> datetime | None:
    """The first instant after ``after`` at which a composition link starts or ends."""
    bounds = [select(func.min(column).label("at")).where(column > after)
              for model in (RoleInclusion, RoleEntitlement)
              for column in (model.valid_from, model.valid_until)]
    found = [at for at in session.scalars(union_all(*bounds)) if at is not None]
    return min(found, default=None)


def current_snapshot(session: Session, *, at: datetime) -> PolicySnapshot:
    """The policy snapshot valid at ``at``, reused from the last build when nothing changed.

    Rebuilt when the policy revision moved, a link started or ended since the last build, or
    ``at`` lies before it. A session holding uncommitted catalog changes always gets a fresh
    build of what it sees, which is never kept for others.
    """
    if session.info.get(POLICY_CHANGED):
        return build_snapshot(session, as_of=at)
    row = session.execute(select(PolicyRevision.epoch, PolicyRevision.value)
                          .where(PolicyRevision.id == 1)).first()
    if row is None:  # no catalog change counted yet (an empty or freshly emptied database)
        return build_snapshot(session, as_of=at)
    key = (row.epoch, row.value)
    where = session.get_bind().engine.url.render_as_string(hide_password=True)
    cached = _CACHE.get(where)
    if (cached is not None and cached.key == key and cached.built_at <= at
            and (cached.good_until is None or at < cached.good_until)):
        return cached.snapshot
    built = build_snapshot(session, as_of=at)
    entry = _Cached(key=key, snapshot=built, built_at=at,
                    good_until=_next_link_change(session, at))
    with _CACHE_LOCK:
        _CACHE[where] = entry
    return built
