"""Catalog queries: lists, usage counts, composition links, SoD items and exceptions."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, delete, func, or_, select
from sqlalchemy.orm import Session

from idgov.catalog.schemas import (
    EntitlementFilter,
    RoleFilter,
    SodExceptionFilter,
    SodRuleFilter,
)
from idgov.models.assignment import Assignment
from idgov.models.catalog import (
    Entitlement,
    Role,
    RoleEntitlement,
    RoleInclusion,
    SodException,
    SodRule,
    SodRuleItem,
)

# One key for every change to role composition: the cycle and duplicate checks read the whole
# graph, so two concurrent changes must not both pass them (PostgreSQL; SQLite has one writer).
_COMPOSITION_LOCK_KEY = 0x1D6_0C01


def lock_composition(session: Session) -> None:
    """Serialise role-composition changes for the rest of the transaction."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(func.pg_advisory_xact_lock(_COMPOSITION_LOCK_KEY)))


def _like(q: str) -> str:
    return f"%{q.lower()}%"


def entitlement_list_query(filters: EntitlementFilter) -> Select[Any]:
    stmt = select(Entitlement)
    for column in ("application_id", "kind", "risk", "privileged", "requestable"):
        value = getattr(filters, column)
        if value is not None:
            stmt = stmt.where(getattr(Entitlement, column) == value)
    if filters.q:
        stmt = stmt.where(or_(func.lower(Entitlement.name).like(_like(filters.q)),
                              func.lower(Entitlement.native_id).like(_like(filters.q))))
    return stmt


def role_list_query(filters: RoleFilter) -> Select[Any]:
    stmt = select(Role)
    for column in ("kind", "requestable", "owner_id"):
        value = getattr(filters, column)
        if value is not None:
            stmt = stmt.where(getattr(Role, column) == value)
    if filters.q:
        stmt = stmt.where(or_(func.lower(Role.name).like(_like(filters.q)),
                              func.lower(Role.description).like(_like(filters.q))))
    return stmt


def sod_rule_list_query(filters: SodRuleFilter) -> Select[Any]:
    stmt = select(SodRule)
    if filters.severity is not None:
        stmt = stmt.where(SodRule.severity == filters.severity)
    if filters.enabled is not None:
        stmt = stmt.where(SodRule.enabled == filters.enabled)
    if filters.q:
        stmt = stmt.where(func.lower(SodRule.name).like(_like(filters.q)))
    return stmt


def _count(session: Session, stmt: Select[Any]) -> int:
    return session.scalar(select(func.count()).select_from(stmt.subquery())) or 0


def assignment_counts(session: Session, *, column: Any, object_id: uuid.UUID,
                      now: datetime) -> tuple[int, int]:
    """(active, all) assignments naming ``object_id`` in ``column`` (role_id or entitlement_id).

    Active: not revoked and not past its end. One ever made is history and is kept.
    """
    base = select(Assignment.id).where(column == object_id)
    active = base.where(Assignment.revoked_at.is_(None),
                        or_(Assignment.valid_until.is_(None), Assignment.valid_until > now))
    return _count(session, active), _count(session, base)


def link_counts_for_role(session: Session, role_id: uuid.UUID) -> int:
    """Composition links, open or ended, in which ``role_id`` takes part."""
    inclusions = select(RoleInclusion.id).where(or_(RoleInclusion.parent_role_id == role_id,
                                                    RoleInclusion.child_role_id == role_id))
    grants = select(RoleEntitlement.id).where(RoleEntitlement.role_id == role_id)
    return _count(session, inclusions) + _count(session, grants)


def link_count_for_entitlement(session: Session, entitlement_id: uuid.UUID) -> int:
    return _count(session, select(RoleEntitlement.id)
                  .where(RoleEntitlement.entitlement_id == entitlement_id))


def sod_item_count(session: Session, *, column: Any, object_id: uuid.UUID) -> int:
    return _count(session, select(SodRuleItem.id).where(column == object_id))


def name_taken(session: Session, model: Any, name: str, exclude: uuid.UUID | None) -> bool:
    stmt = select(model.id).where(func.lower(model.name) == name.lower())
    if exclude is not None:
        stmt = stmt.where(model.id != exclude)
    return session.scalar(stmt.limit(1)) is not None


def native_id_taken(session: Session, application_id: uuid.UUID, native_id: str,
                    exclude: uuid.UUID | None) -> bool:
    stmt = select(Entitlement.id).where(Entitlement.application_id == application_id,
                                        Entitlement.native_id == native_id)
    if exclude is not None:
        stmt = stmt.where(Entitlement.id != exclude)
    return session.scalar(stmt.limit(1)) is not None


def _valid_at(model: Any, at: datetime) -> ColumnElement[bool]:
    return and_(model.valid_from <= at, or_(model.valid_until.is_(None), model.valid_until > at))


def _open_at(model: Any, at: datetime) -> ColumnElement[bool]:
    """Not ended by ``at``: valid now or scheduled to start later."""
    return or_(model.valid_until.is_(None), model.valid_until > at)


def included_roles_at(session: Session, role_id: uuid.UUID,
                      at: datetime) -> list[tuple[RoleInclusion, Role]]:
    stmt = (select(RoleInclusion, Role).join(Role, Role.id == RoleInclusion.child_role_id)
            .where(RoleInclusion.parent_role_id == role_id, _valid_at(RoleInclusion, at))
            .order_by(Role.name))
    return [(link, role) for link, role in session.execute(stmt)]


def entitlements_at(session: Session, role_id: uuid.UUID,
                    at: datetime) -> list[tuple[RoleEntitlement, Entitlement]]:
    stmt = (select(RoleEntitlement, Entitlement)
            .join(Entitlement, Entitlement.id == RoleEntitlement.entitlement_id)
            .where(RoleEntitlement.role_id == role_id, _valid_at(RoleEntitlement, at))
            .order_by(Entitlement.name))
    return [(link, ent) for link, ent in session.execute(stmt)]


def open_inclusion_edges(session: Session, at: datetime) -> list[tuple[uuid.UUID, uuid.UUID]]:
    """Every inclusion edge not ended by ``at`` (scheduled ones count: they will hold)."""
    stmt = select(RoleInclusion.parent_role_id, RoleInclusion.child_role_id).where(
        _open_at(RoleInclusion, at))
    return [(p, c) for p, c in session.execute(stmt)]


def open_inclusion(session: Session, parent_id: uuid.UUID, child_id: uuid.UUID,
                   at: datetime) -> RoleInclusion | None:
    stmt = select(RoleInclusion).where(RoleInclusion.parent_role_id == parent_id,
                                       RoleInclusion.child_role_id == child_id,
                                       _open_at(RoleInclusion, at))
    return session.scalars(stmt.order_by(RoleInclusion.valid_from).limit(1)).first()


def open_role_entitlement(session: Session, role_id: uuid.UUID, entitlement_id: uuid.UUID,
                          at: datetime) -> RoleEntitlement | None:
    stmt = select(RoleEntitlement).where(RoleEntitlement.role_id == role_id,
                                         RoleEntitlement.entitlement_id == entitlement_id,
                                         _open_at(RoleEntitlement, at))
    return session.scalars(stmt.order_by(RoleEntitlement.valid_from).limit(1)).first()


def role_names(session: Session, ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, str]:
    wanted = set(ids)
    if not wanted:
        return {}
    rows = session.execute(select(Role.id, Role.name).where(Role.id.in_(wanted)))
    return {role_id: name for role_id, name in rows}


def existing_ids(session: Session, model: Any, ids: Iterable[uuid.UUID]) -> set[uuid.UUID]:
    wanted = set(ids)
    if not wanted:
        return set()
    return set(session.scalars(select(model.id).where(model.id.in_(wanted))))


def sod_items(session: Session, rule_ids: Iterable[uuid.UUID]
              ) -> dict[uuid.UUID, list[tuple[SodRuleItem, str]]]:
    """The items of the given rules with the name of the role or entitlement each names."""
    wanted = set(rule_ids)
    if not wanted:
        return {}
    stmt = (select(SodRuleItem, func.coalesce(Role.name, Entitlement.name))
            .outerjoin(Role, Role.id == SodRuleItem.role_id)
            .outerjoin(Entitlement, Entitlement.id == SodRuleItem.entitlement_id)
            .where(SodRuleItem.rule_id.in_(wanted)))
    grouped: dict[uuid.UUID, list[tuple[SodRuleItem, str]]] = {r: [] for r in wanted}
    for item, name in session.execute(stmt):
        grouped[item.rule_id].append((item, name or ""))
    for items in grouped.values():
        items.sort(key=lambda pair: (pair[0].side, pair[0].role_id is not None,
                                     pair[1].lower(), str(pair[0].id)))
    return grouped


def delete_sod_items(session: Session, rule_id: uuid.UUID, side: str | None = None) -> None:
    """Remove the items of one side of a rule (both sides when ``side`` is None)."""
    stmt = delete(SodRuleItem).where(SodRuleItem.rule_id == rule_id)
    if side is not None:
        stmt = stmt.where(SodRuleItem.side == side)
    session.execute(stmt.execution_options(synchronize_session="fetch"))


def _exception_active(now: datetime) -> ColumnElement[bool]:
    return and_(SodException.revoked_at.is_(None), SodException.expires_at > now)


def exception_list_query(rule_id: uuid.UUID, filters: SodExceptionFilter,
                         now: datetime) -> Select[Any]:
    stmt = select(SodException).where(SodException.rule_id == rule_id)
    if filters.identity_id is not None:
        stmt = stmt.where(SodException.identity_id == filters.identity_id)
    if filters.active is True:
        stmt = stmt.where(_exception_active(now))
    elif filters.active is False:
        stmt = stmt.where(~_exception_active(now))
    return stmt


def active_exception(session: Session, rule_id: uuid.UUID, identity_id: uuid.UUID,
                     now: datetime) -> SodException | None:
    stmt = select(SodException).where(SodException.rule_id == rule_id,
                                      SodException.identity_id == identity_id,
                                      _exception_active(now))
    return session.scalars(stmt.limit(1)).first()


def exception_count(session: Session, rule_id: uuid.UUID) -> int:
    return _count(session, select(SodException.id).where(SodException.rule_id == rule_id))
