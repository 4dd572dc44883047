"""Assignment queries: filters, what is in force at an instant, and what a caller may see."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, inspect, not_, or_, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from idgov.assignments.schemas import AssignmentFilter
from idgov.models.assignment import Assignment
from idgov.models.catalog import Entitlement, Role
from idgov.models.identity import Identity


def in_force(at: datetime) -> ColumnElement[bool]:
    """Assignments that grant access at ``at``: started, not expired, not revoked."""
    return and_(
        Assignment.revoked_at.is_(None),
        Assignment.valid_from <= at,
        or_(Assignment.valid_until.is_(None), Assignment.valid_until > at),
    )


def not_ended(at: datetime) -> ColumnElement[bool]:
    """Assignments in force at ``at`` or still to start: neither revoked nor expired."""
    return and_(
        Assignment.revoked_at.is_(None),
        or_(Assignment.valid_until.is_(None), Assignment.valid_until > at),
    )


def same_target(*, identity_id: uuid.UUID, role_id: uuid.UUID | None,
                entitlement_id: uuid.UUID | None) -> ColumnElement[bool]:
    target = (Assignment.role_id == role_id if role_id is not None
              else Assignment.entitlement_id == entitlement_id)
    return and_(Assignment.identity_id == identity_id, target)


def find_overlapping(session: Session, *, identity_id: uuid.UUID, role_id: uuid.UUID | None,
                     entitlement_id: uuid.UUID | None, valid_from: datetime,
                     valid_until: datetime | None, now: datetime,
                     exclude: uuid.UUID | None = None) -> Assignment | None:
    """A live assignment of the same thing to the same identity whose window overlaps
    (other than ``exclude``)."""
    stmt = select(Assignment).where(
        same_target(identity_id=identity_id, role_id=role_id, entitlement_id=entitlement_id),
        not_ended(now),
        or_(Assignment.valid_until.is_(None), Assignment.valid_until > valid_from),
    )
    if exclude is not None:
        stmt = stmt.where(Assignment.id != exclude)
    if valid_until is not None:
        stmt = stmt.where(Assignment.valid_from < valid_until)
    return session.scalars(stmt.order_by(Assignment.valid_from).limit(1)).first()


def list_query(filters: AssignmentFilter, *, now: datetime) -> Select[Any]:
    stmt = select(Assignment)
    for column in ("identity_id", "role_id", "entitlement_id", "source"):
        value = getattr(filters, column)
        if value is not None:
            stmt = stmt.where(getattr(Assignment, column) == value)
    if filters.active is True:
        stmt = stmt.where(in_force(now))
    elif filters.active is False:
        stmt = stmt.where(not_(in_force(now)))
    return stmt


def visible_to(person_id: uuid.UUID) -> ColumnElement[bool]:
    """Row rule for related readers: assignments of the person's direct and indirect reports,
    and assignments of the roles and entitlements the person owns."""
    reports = (select(Identity.id).where(Identity.manager_id == person_id)
               .cte("reports", recursive=True))
    reports = reports.union(
        select(Identity.id).join(reports, Identity.manager_id == reports.c.id)
    )
    owned_roles = select(Role.id).where(Role.owner_id == person_id)
    owned_entitlements = select(Entitlement.id).where(Entitlement.owner_id == person_id)
    return or_(
        Assignment.identity_id.in_(select(reports.c.id)),
        Assignment.role_id.in_(owned_roles),
        Assignment.entitlement_id.in_(owned_entitlements),
    )


def owns_target(session: Session, person_id: uuid.UUID, assignment: Assignment) -> bool:
    """Whether ``person_id`` owns the role or entitlement ``assignment`` grants."""
    if assignment.role_id is not None:
        owner = session.scalar(select(Role.owner_id).where(Role.id == assignment.role_id))
    else:
        owner = session.scalar(
            select(Entitlement.owner_id).where(Entitlement.id == assignment.entitlement_id)
        )
    return owner == person_id


def load_many(session: Session, ids: Sequence[uuid.UUID], *,
              chunk: int = 1000) -> dict[uuid.UUID, Assignment]:
    """The assignments with these ids, by id (unknown ids are left out): those the session
    holds already, loaded, are taken from it; the others with one query per ``chunk``."""
    found: dict[uuid.UUID, Assignment] = {}
    wanted: list[uuid.UUID] = []
    for i in dict.fromkeys(ids):
        held = session.identity_map.get(Session.identity_key(Assignment, i))
        if held is not None and not inspect(held).expired_attributes:
            found[i] = held
        else:
            wanted.append(i)
    for start in range(0, len(wanted), chunk):
        part = wanted[start:start + chunk]
        found.update((a.id, a) for a in session.scalars(
            select(Assignment).where(Assignment.id.in_(part))))
    return found


def set_columns(session: Session, rows: Sequence[Assignment], values: dict[str, Any]) -> None:
    """One UPDATE of ``values`` over the assignments ``rows``; the loaded rows take the new
    values as their database state (no second write, no per-object evaluation)."""
    if not rows:
        return
    session.execute(update(Assignment).where(Assignment.id.in_([a.id for a in rows]))
                    .values(**values).execution_options(synchronize_session=False))
    for row in rows:
        for key, value in values.items():
            set_committed_value(row, key, value)
