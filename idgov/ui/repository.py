"""Queries the pages need that no domain service offers: the people of the demo sign-in."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Select, exists, func, or_, select
from sqlalchemy.orm import Session, aliased

from idgov.models.application import Application
from idgov.models.auth import ServicePrincipal, ServiceRoleGrant
from idgov.models.identity import Group, GroupMember, Identity
from idgov.models.requests import ApprovalStep, ApprovalStepApprover


@dataclass(frozen=True)
class Person:
    id: uuid.UUID
    name: str
    email: str | None
    job_title: str | None
    department: str | None


@dataclass(frozen=True)
class Persona:
    """One way to try the service: a label, what it shows, and a person to sign in as."""

    key: str
    label: str
    shows: str
    person: Person


def _person(row: Identity) -> Person:
    return Person(id=row.id, name=row.display_name, email=row.email, job_title=row.job_title,
                  department=row.department)


def _first(session: Session, *where: ColumnElement[bool],
           order: list[ColumnElement[object]] | None = None) -> Person | None:
    stmt = (select(Identity).where(Identity.lifecycle_state == "active", *where)
            .order_by(*(order or []), Identity.employee_id).limit(1))
    row = session.scalars(stmt).first()
    return None if row is None else _person(row)


def personas(session: Session) -> list[Persona]:
    """A person for each persona found in the data, in a fixed order (deterministic)."""
    report = aliased(Identity)
    reports = (select(func.count()).select_from(report)
               .where(report.manager_id == Identity.id).scalar_subquery())
    has_reports = exists().where(report.manager_id == Identity.id)
    granted = exists().where(ServiceRoleGrant.identity_id == Identity.id)
    owns = exists().where(Application.owner_id == Identity.id)
    in_resolution = exists().where(GroupMember.identity_id == Identity.id,
                                   GroupMember.group_id == Group.id, Group.kind == "resolution")

    def role(name: str) -> ColumnElement[bool]:
        return exists().where(ServiceRoleGrant.identity_id == Identity.id,
                              ServiceRoleGrant.role == name)

    wanted: list[tuple[str, str, str, Person | None]] = [
        ("requester", "Requester", "the catalog, a request form, my requests",
         _first(session, ~has_reports, ~granted, ~owns, ~in_resolution)),
        ("approver", "Approver", "an inbox of waiting approvals",
         _first(session, exists().where(
             ApprovalStepApprover.identity_id == Identity.id,
             ApprovalStepApprover.step_id == ApprovalStep.id, ApprovalStep.state == "waiting"))),
        ("manager", "Manager / reviewer", "direct reports, approvals and reviews",
         _first(session, has_reports, order=[reports.desc()])),
        ("owner", "Application owner", "owned systems, owner approvals",
         _first(session, owns)),
        ("resolution", "Resolution group member", "manual tasks and failed operations",
         _first(session, in_resolution)),
        ("auditor", "Auditor", "reports, the audit trail", _first(session, role("auditor"))),
        ("administrator", "Administrator", "everything, changing it",
         _first(session, role("administrator"))),
    ]
    return [Persona(key, label, shows, person) for key, label, shows, person in wanted
            if person is not None]


def people(session: Session, *, q: str | None, limit: int = 40) -> list[Person]:
    """Active people whose name, e-mail, department or title contains ``q``."""
    stmt = select(Identity).where(Identity.lifecycle_state == "active")
    if q:
        pattern = f"%{q.strip().lower()}%"
        stmt = stmt.where(or_(func.lower(Identity.display_name).like(pattern),
                              func.lower(Identity.email).like(pattern),
                              func.lower(Identity.department).like(pattern),
                              func.lower(Identity.job_title).like(pattern)))
    stmt = stmt.order_by(Identity.display_name, Identity.id).limit(limit)
    return [_person(row) for row in session.scalars(stmt)]


def principals(session: Session) -> list[ServicePrincipal]:
    """Enabled service principals holding a role a person could try (administrator,
    auditor) - the demo has its bootstrap administrator."""
    rows = session.scalars(select(ServicePrincipal).where(ServicePrincipal.disabled.is_(False))
                           .order_by(ServicePrincipal.name))
    return [p for p in rows if {"administrator", "auditor"} & set(p.roles)]


def count(session: Session, stmt: Select[Any]) -> int:
    """How many rows ``stmt`` (a service's list query, with its row rules) selects."""
    inner = stmt.order_by(None).subquery()
    return int(session.scalar(select(func.count()).select_from(inner)) or 0)


def names_of(session: Session, ids: set[uuid.UUID]) -> dict[uuid.UUID, str]:
    """Display names of identities, for showing approvers and requesters."""
    if not ids:
        return {}
    rows = session.execute(select(Identity.id, Identity.display_name)
                           .where(Identity.id.in_(sorted(ids))))
    return {row_id: name for row_id, name in rows}


def application_names(session: Session, ids: set[uuid.UUID]) -> dict[uuid.UUID, str]:
    if not ids:
        return {}
    rows = session.execute(select(Application.id, Application.name)
                           .where(Application.id.in_(sorted(ids))))
    return {row_id: name for row_id, name in rows}
