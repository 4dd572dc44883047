"""Reconciliation queries: everything about one application, each in one set-based statement.

A run loads the application's accounts, entitlements, the desired holdings (assignments in
force now, roles expanded through the composition valid now), the identities and the open
operations once, then works on dictionaries: no query per account.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, or_, select, union
from sqlalchemy.orm import Session

from idgov.assignments.repository import in_force
from idgov.models.application import Account, Application
from idgov.models.assignment import Assignment
from idgov.models.catalog import Entitlement, RoleEntitlement, RoleInclusion
from idgov.models.identity import Identity
from idgov.models.provisioning import DriftItem, ProvisioningOperation, ReconciliationRun
from idgov.reconciliation.schemas import DriftFilter, RunFilter

# Operations that still stand for their change: a worker will run them, or a person must look
# at them (a failure nobody resolved yet). A new fix for the same thing would duplicate them.
OPEN_STATES = ("pending", "running", "retry_scheduled")


def _valid_at(model: Any, at: datetime) -> ColumnElement[bool]:
    return and_(model.valid_from <= at, or_(model.valid_until.is_(None), model.valid_until > at))


def accounts_of(session: Session, application_id: uuid.UUID) -> list[Account]:
    return list(session.scalars(select(Account).where(Account.application_id == application_id)))


def entitlements_of(session: Session, application_id: uuid.UUID) -> list[Entitlement]:
    return list(session.scalars(
        select(Entitlement).where(Entitlement.application_id == application_id)))


@dataclass(frozen=True)
class IdentityRow:
    id: uuid.UUID
    employee_id: str
    email: str | None
    lifecycle_state: str
    attributes: dict[str, Any] | None


def identities(session: Session, *, with_attributes: bool) -> list[IdentityRow]:
    """Every identity's correlation keys and state (attributes only when a rule needs them)."""
    columns: list[Any] = [Identity.id, Identity.employee_id, Identity.email,
                          Identity.lifecycle_state]
    if with_attributes:
        columns.append(Identity.attributes)
    rows = session.execute(select(*columns))
    return [IdentityRow(r[0], r[1], r[2], r[3], r[4] if with_attributes else None)
            for r in rows]


def identity_states(session: Session, ids: set[uuid.UUID]) -> dict[uuid.UUID, str]:
    """lifecycle_state of each of ``ids``."""
    wanted = list(ids)
    found: dict[uuid.UUID, str] = {}
    for start in range(0, len(wanted), 1000):
        chunk = wanted[start:start + 1000]
        found.update(session.execute(select(Identity.id, Identity.lifecycle_state)
                                     .where(Identity.id.in_(chunk))))
    return found


def holdings(session: Session, *, application_id: uuid.UUID,
             at: datetime) -> set[tuple[uuid.UUID, uuid.UUID]]:
    """(identity id, entitlement id) for every entitlement of the application that an
    assignment in force at ``at`` gives, directly or through roles (composition at ``at``)."""
    seed = select(Assignment.identity_id.label("identity_id"),
                  Assignment.role_id.label("role_id")).where(in_force(at),
                                                             Assignment.role_id.is_not(None))
    reach = seed.cte("reach", recursive=True)
    reach = reach.union(
        select(reach.c.identity_id, RoleInclusion.child_role_id)
        .join(RoleInclusion, RoleInclusion.parent_role_id == reach.c.role_id)
        .where(_valid_at(RoleInclusion, at)))
    via_roles = (select(reach.c.identity_id, RoleEntitlement.entitlement_id)
                 .join(reach, RoleEntitlement.role_id == reach.c.role_id)
                 .join(Entitlement, Entitlement.id == RoleEntitlement.entitlement_id)
                 .where(_valid_at(RoleEntitlement, at),
                        Entitlement.application_id == application_id))
    direct = (select(Assignment.identity_id, Assignment.entitlement_id)
              .join(Entitlement, Entitlement.id == Assignment.entitlement_id)
              .where(in_force(at), Entitlement.application_id == application_id))
    return {(i, e) for i, e in session.execute(union(via_roles, direct))
            if e is not None}


def live_direct_assignments(session: Session, *, application_id: uuid.UUID,
                            at: datetime) -> set[tuple[uuid.UUID, uuid.UUID]]:
    """(identity, entitlement) of direct entitlement assignments not ended at ``at``, those
    still to start included (a new grant would overlap them)."""
    stmt = (select(Assignment.identity_id, Assignment.entitlement_id)
            .join(Entitlement, Entitlement.id == Assignment.entitlement_id)
            .where(Entitlement.application_id == application_id,
                   Assignment.revoked_at.is_(None),
                   or_(Assignment.valid_until.is_(None), Assignment.valid_until > at)))
    return {(i, e) for i, e in session.execute(stmt) if e is not None}


@dataclass(frozen=True)
class OpenOperation:
    id: uuid.UUID
    identity_id: uuid.UUID
    action: str
    entitlement_id: uuid.UUID | None


def open_operations(session: Session, application_id: uuid.UUID) -> list[OpenOperation]:
    """The application's operations still in flight, and its failures nobody resolved."""
    stmt = select(ProvisioningOperation.id, ProvisioningOperation.identity_id,
                  ProvisioningOperation.action, ProvisioningOperation.entitlement_id).where(
        ProvisioningOperation.application_id == application_id,
        or_(ProvisioningOperation.state.in_(OPEN_STATES),
            and_(ProvisioningOperation.state == "failed",
                 ProvisioningOperation.resolved_by.is_(None))))
    return [OpenOperation(*row) for row in session.execute(stmt)]


def pending_operations_of_assignments(session: Session,
                                      assignment_ids: list[uuid.UUID]
                                      ) -> list[ProvisioningOperation]:
    found: list[ProvisioningOperation] = []
    for start in range(0, len(assignment_ids), 1000):
        chunk = assignment_ids[start:start + 1000]
        found.extend(session.scalars(
            select(ProvisioningOperation)
            .where(ProvisioningOperation.assignment_id.in_(chunk),
                   ProvisioningOperation.state == "pending")
            .order_by(ProvisioningOperation.id)))
    return found


def run_list_query(filters: RunFilter) -> Select[Any]:
    stmt = select(ReconciliationRun)
    for column in ("application_id", "kind", "state"):
        value = getattr(filters, column)
        if value is not None:
            stmt = stmt.where(getattr(ReconciliationRun, column) == value)
    return stmt


def drift_list_query(run_id: uuid.UUID, filters: DriftFilter) -> Select[Any]:
    stmt = select(DriftItem).where(DriftItem.run_id == run_id)
    for column in ("kind", "identity_id"):
        value = getattr(filters, column)
        if value is not None:
            stmt = stmt.where(getattr(DriftItem, column) == value)
    return stmt


def find_application(session: Session, key: str) -> uuid.UUID | None:
    """The id of the application named ``key``, or whose id is ``key``."""
    try:
        as_id: uuid.UUID | None = uuid.UUID(key)
    except ValueError:
        as_id = None
    if as_id is not None:
        found = session.scalar(select(Application.id).where(Application.id == as_id))
        if found is not None:
            return found
    return session.scalar(select(Application.id).where(Application.name == key))
