"""Provisioning queries: effective entitlements through the composition valid at an instant.

Every expansion is one recursive CTE over the role inclusion links valid at the instant
(``WITH RECURSIVE``, the same SQL on SQLite and PostgreSQL). ``UNION`` (not ``UNION ALL``)
keeps each (identity, role) pair once, so a cycle in bad data ends the recursion.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    CTE,
    ColumnElement,
    Select,
    and_,
    bindparam,
    func,
    or_,
    select,
    union,
    update,
)
from sqlalchemy.orm import Session, aliased

from idgov.assignments.repository import in_force
from idgov.models.assignment import Assignment
from idgov.models.catalog import Entitlement, Role, RoleEntitlement, RoleInclusion
from idgov.models.identity import GroupMember
from idgov.models.provisioning import ProvisioningOperation
from idgov.provisioning.schemas import FailedFilter, OperationFilter

# Above this many ids a filter is applied in Python instead of as an SQL IN list.
_IN_LIST_MAX = 1000


def _valid_at(model: Any, at: Any) -> ColumnElement[bool]:
    """Links valid at ``at`` (a datetime or a bound parameter)."""
    return and_(model.valid_from <= at, or_(model.valid_until.is_(None), model.valid_until > at))


def _reach(seed: Any, at: Any, name: str = "reach") -> CTE:
    """(identity_id, role_id) for the seed's roles and every role they include at ``at``."""
    reach = seed.cte(name, recursive=True)
    return reach.union(
        select(reach.c.identity_id, RoleInclusion.child_role_id)
        .join(RoleInclusion, RoleInclusion.parent_role_id == reach.c.role_id)
        .where(_valid_at(RoleInclusion, at))
    )


def _within(column: Any, entitlement_ids: Collection[uuid.UUID] | None) -> list[Any]:
    if entitlement_ids is None or len(entitlement_ids) > _IN_LIST_MAX:
        return []
    return [column.in_(list(entitlement_ids))]


def role_entitlements(session: Session, *, role_id: uuid.UUID, at: datetime) -> set[uuid.UUID]:
    """The entitlements ``role_id`` gives at ``at``, through inclusion."""
    seed = select(Role.id.label("identity_id"), Role.id.label("role_id")).where(Role.id == role_id)
    reach = _reach(seed, at)
    stmt = (select(RoleEntitlement.entitlement_id)
            .join(reach, RoleEntitlement.role_id == reach.c.role_id)
            .where(_valid_at(RoleEntitlement, at)))
    return set(session.scalars(stmt))


def held_entitlements(session: Session, *, identity_id: uuid.UUID, at: datetime,
                      exclude_assignment_id: uuid.UUID | None = None,
                      within: Collection[uuid.UUID] | None = None) -> set[uuid.UUID]:
    """What the identity's assignments in force at ``at`` give (optionally leaving one out),
    restricted to ``within`` when given."""
    mine = [Assignment.identity_id == identity_id, in_force(at)]
    if exclude_assignment_id is not None:
        mine.append(Assignment.id != exclude_assignment_id)
    seed = select(Assignment.identity_id.label("identity_id"),
                  Assignment.role_id.label("role_id")).where(*mine,
                                                             Assignment.role_id.is_not(None))
    reach = _reach(seed, at)
    via_roles = (select(RoleEntitlement.entitlement_id)
                 .join(reach, RoleEntitlement.role_id == reach.c.role_id)
                 .where(_valid_at(RoleEntitlement, at),
                        *_within(RoleEntitlement.entitlement_id, within)))
    direct = select(Assignment.entitlement_id).where(
        *mine, Assignment.entitlement_id.is_not(None),
        *_within(Assignment.entitlement_id, within))
    found = {e for e in session.scalars(union(via_roles, direct)) if e is not None}
    return found if within is None else found & set(within)


@functools.cache
def _assignment_statement(by_role: bool) -> Any:
    """The statement of :func:`assignment_entitlements`, built once with bound parameters."""
    links_at: Any = bindparam("links_at")
    others_at: Any = bindparam("others_at")
    if by_role:
        this_seed = select(Role.id.label("identity_id"), Role.id.label("role_id")).where(
            Role.id == bindparam("role_id"))
        this = _reach(this_seed, links_at, "reach_this")
        gives: Any = (select(RoleEntitlement.entitlement_id)
                      .join(this, RoleEntitlement.role_id == this.c.role_id)
                      .where(_valid_at(RoleEntitlement, links_at)))
    else:
        gives = select(Entitlement.id).where(Entitlement.id == bindparam("entitlement_id"))
    # in_force compares columns with its argument: a bound parameter works as a datetime.
    mine = [Assignment.identity_id == bindparam("identity_id"), in_force(others_at),
            Assignment.id != bindparam("assignment_id")]
    other_seed = select(Assignment.identity_id.label("identity_id"),
                        Assignment.role_id.label("role_id")).where(
        *mine, Assignment.role_id.is_not(None))
    other = _reach(other_seed, others_at, "reach_other")
    via_roles = (select(RoleEntitlement.entitlement_id)
                 .join(other, RoleEntitlement.role_id == other.c.role_id)
                 .where(_valid_at(RoleEntitlement, others_at)))
    direct = select(Assignment.entitlement_id).where(*mine,
                                                     Assignment.entitlement_id.is_not(None))
    elsewhere = or_(Entitlement.id.in_(via_roles), Entitlement.id.in_(direct))
    return select(Entitlement.id, Entitlement.application_id,
                  elsewhere.label("elsewhere")).where(Entitlement.id.in_(gives))


def assignment_entitlements(session: Session, *, assignment: Assignment, links_at: datetime,
                            others_at: datetime) -> list[tuple[uuid.UUID, uuid.UUID, bool]]:
    """What one assignment gives, in one statement: (entitlement id, application id, whether
    the identity's other assignments in force at ``others_at`` give it too).

    The assignment's role is expanded through the links valid at ``links_at``; the other
    assignments through the links valid at ``others_at``.
    """
    by_role = assignment.role_id is not None
    params: dict[str, Any] = {"links_at": links_at, "others_at": others_at,
                              "identity_id": assignment.identity_id,
                              "assignment_id": assignment.id}
    if by_role:
        params["role_id"] = assignment.role_id
    else:
        params["entitlement_id"] = assignment.entitlement_id
    rows = session.execute(_assignment_statement(by_role), params)
    return [(e, a, bool(x)) for e, a, x in rows]


def _ancestors(role_id: uuid.UUID, at: datetime) -> CTE:
    """``role_id`` and every role that includes it, directly or not, at ``at``."""
    up = select(Role.id.label("role_id")).where(Role.id == role_id).cte("up", recursive=True)
    return up.union(
        select(RoleInclusion.parent_role_id)
        .join(up, RoleInclusion.child_role_id == up.c.role_id)
        .where(_valid_at(RoleInclusion, at))
    )


def holders_of(session: Session, *, role_id: uuid.UUID, at: datetime) -> set[uuid.UUID]:
    """Identities holding ``role_id`` at ``at`` through an assignment in force of the role or
    of any role that includes it."""
    up = _ancestors(role_id, at)
    stmt = select(Assignment.identity_id).where(
        in_force(at), Assignment.role_id.in_(select(up.c.role_id))).distinct()
    return set(session.scalars(stmt))


def holder_entitlements(session: Session, *, role_id: uuid.UUID, at: datetime,
                        within: Collection[uuid.UUID]) -> dict[uuid.UUID, set[uuid.UUID]]:
    """For every holder of ``role_id`` (see :func:`holders_of`): which of ``within`` all of
    their assignments in force at ``at`` give them. Holders holding none of them map to an
    empty set."""
    up = _ancestors(role_id, at)
    holders = select(Assignment.identity_id).where(
        in_force(at), Assignment.role_id.in_(select(up.c.role_id)))
    seed = select(Assignment.identity_id.label("identity_id"),
                  Assignment.role_id.label("role_id")).where(
        in_force(at), Assignment.role_id.is_not(None), Assignment.identity_id.in_(holders))
    reach = _reach(seed, at)
    via_roles = (select(reach.c.identity_id, RoleEntitlement.entitlement_id)
                 .join(reach, RoleEntitlement.role_id == reach.c.role_id)
                 .where(_valid_at(RoleEntitlement, at),
                        *_within(RoleEntitlement.entitlement_id, within)))
    direct = select(Assignment.identity_id, Assignment.entitlement_id).where(
        in_force(at), Assignment.entitlement_id.is_not(None),
        Assignment.identity_id.in_(holders), *_within(Assignment.entitlement_id, within))
    result: dict[uuid.UUID, set[uuid.UUID]] = {
        i: set() for i in session.scalars(holders.distinct())}
    wanted = set(within)
    for identity_id, entitlement_id in session.execute(union(via_roles, direct)):
        if entitlement_id in wanted and identity_id in result:
            result[identity_id].add(entitlement_id)
    return result


def applications_of(session: Session,
                    entitlement_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, uuid.UUID]:
    """entitlement id -> its application id."""
    wanted = list(set(entitlement_ids))
    found: dict[uuid.UUID, uuid.UUID] = {}
    for start in range(0, len(wanted), _IN_LIST_MAX):
        chunk = wanted[start:start + _IN_LIST_MAX]
        for entitlement_id, application_id in session.execute(
                select(Entitlement.id, Entitlement.application_id)
                .where(Entitlement.id.in_(chunk))):
            found[entitlement_id] = application_id
    return found


def existing_keys(session: Session, keys: Iterable[str]) -> set[str]:
    wanted = list(set(keys))
    found: set[str] = set()
    for start in range(0, len(wanted), _IN_LIST_MAX):
        chunk = wanted[start:start + _IN_LIST_MAX]
        found.update(session.scalars(
            select(ProvisioningOperation.idempotency_key)
            .where(ProvisioningOperation.idempotency_key.in_(chunk))))
    return found


def key_exists(session: Session, key: str) -> bool:
    """Whether an operation with this idempotency key was recorded."""
    return session.scalar(select(ProvisioningOperation.id)
                          .where(ProvisioningOperation.idempotency_key == key)) is not None


def operations_of_line(session: Session, line_id: uuid.UUID) -> list[ProvisioningOperation]:
    stmt = (select(ProvisioningOperation)
            .where(ProvisioningOperation.request_line_id == line_id)
            .order_by(ProvisioningOperation.created_at, ProvisioningOperation.id))
    return list(session.scalars(stmt))


def pending_grants_of(session: Session, assignment_id: uuid.UUID) -> list[ProvisioningOperation]:
    """Grant operations recorded for an assignment that no worker has picked up yet."""
    stmt = (select(ProvisioningOperation)
            .where(ProvisioningOperation.assignment_id == assignment_id,
                   ProvisioningOperation.action == "grant",
                   ProvisioningOperation.state == "pending")
            .order_by(ProvisioningOperation.id))
    return list(session.scalars(stmt))


def list_query(filters: OperationFilter) -> Select[Any]:
    stmt = select(ProvisioningOperation)
    for column in ("identity_id", "request_line_id", "state", "cause", "action",
                   "entitlement_id", "assignment_id", "application_id"):
        value = getattr(filters, column)
        if value is not None:
            stmt = stmt.where(getattr(ProvisioningOperation, column) == value)
    return stmt


def failed_query(filters: FailedFilter, *,
                 group_ids: Collection[uuid.UUID] | None = None) -> Select[Any]:
    stmt = select(ProvisioningOperation).where(ProvisioningOperation.state == "failed")
    for column in ("application_id", "error_category", "resolution_group_id"):
        value = getattr(filters, column)
        if value is not None:
            stmt = stmt.where(getattr(ProvisioningOperation, column) == value)
    if group_ids is not None:
        stmt = stmt.where(ProvisioningOperation.resolution_group_id.in_(list(group_ids)))
    return stmt


# --- the queue -------------------------------------------------------------------------------

OPEN_STATES = ("pending", "running", "retry_scheduled")


@dataclass(frozen=True)
class Candidate:
    id: uuid.UUID
    application_id: uuid.UUID
    detail: dict[str, Any]


def due_candidates(session: Session, *, now: datetime, exclude_applications: Collection[uuid.UUID],
                   limit: int, lock: bool) -> list[Candidate]:
    """Operations due now, in queue order (ordinal, creation, id), that no earlier open
    operation of the same identity and application holds back.

    Due: pending (and past ``next_attempt_at`` when set), retry_scheduled past
    ``next_attempt_at``, or running with a lease that ran out (its worker died). A pending
    operation that starts later (``detail.not_before``) holds nothing back. A running
    operation without a lease (a fulfilment task has it) is never due. With ``lock`` the
    rows are locked ``FOR UPDATE SKIP LOCKED`` (PostgreSQL): a concurrent claimer skips them.

    One statement: the operations that hold their identity's queue (running, retry_scheduled,
    pending and due; found through the state index, finished operations are never read) are
    numbered per identity and application in queue order (a window function, computed once
    per claim); only the first of each may run, and only when it is due itself. Every due
    operation holds, so "first and due" is exactly "due, and no earlier operation holds".
    """
    op = aliased(ProvisioningOperation, name="op")
    holds = or_(
        ProvisioningOperation.state.in_(("running", "retry_scheduled")),
        and_(ProvisioningOperation.state == "pending",
             or_(ProvisioningOperation.next_attempt_at.is_(None),
                 ProvisioningOperation.next_attempt_at <= now)),
    )
    heads = (select(ProvisioningOperation.id.label("id"),
                    func.row_number().over(
                        partition_by=(ProvisioningOperation.identity_id,
                                      ProvisioningOperation.application_id),
                        order_by=(ProvisioningOperation.ordinal,
                                  ProvisioningOperation.created_at,
                                  ProvisioningOperation.id)).label("place"))
             .where(holds)
             .cte("heads"))
    due = or_(
        and_(op.state == "pending",
             or_(op.next_attempt_at.is_(None), op.next_attempt_at <= now)),
        and_(op.state == "retry_scheduled", op.next_attempt_at <= now),
        and_(op.state == "running", op.lease_until.is_not(None), op.lease_until < now),
    )
    stmt = (select(op.id, op.application_id, op.detail)
            .join(heads, and_(heads.c.id == op.id, heads.c.place == 1))
            .where(due)
            .order_by(op.ordinal, op.created_at, op.id)
            .limit(limit))
    if exclude_applications:
        stmt = stmt.where(op.application_id.not_in(list(exclude_applications)))
    if lock:
        stmt = stmt.with_for_update(skip_locked=True, of=op)
    return [Candidate(id=i, application_id=a, detail=d or {}) for i, a, d in session.execute(stmt)]


def mark_claimed(session: Session, ids: Collection[uuid.UUID], *, worker_id: str, now: datetime,
                 lease_until: datetime) -> None:
    """Running for ``worker_id`` until ``lease_until``, one more attempt."""
    if not ids:
        return
    session.execute(update(ProvisioningOperation)
                    .where(ProvisioningOperation.id.in_(list(ids)))
                    .values(state="running", claimed_by=worker_id, lease_until=lease_until,
                            started_at=now, attempts=ProvisioningOperation.attempts + 1,
                            updated_at=now)
                    .execution_options(synchronize_session=False))


def count_open(session: Session, application_id: uuid.UUID) -> tuple[int, int]:
    """(open operations not running, failed operations) of one application."""
    rows: dict[str, int] = {state: count for state, count in session.execute(
        select(ProvisioningOperation.state, func.count())
        .where(ProvisioningOperation.application_id == application_id,
               ProvisioningOperation.state.in_(("pending", "retry_scheduled", "failed")))
        .group_by(ProvisioningOperation.state))}
    return rows.get("pending", 0) + rows.get("retry_scheduled", 0), rows.get("failed", 0)


def groups_of(session: Session, identity_id: uuid.UUID) -> set[uuid.UUID]:
    return set(session.scalars(select(GroupMember.group_id)
                               .where(GroupMember.identity_id == identity_id)))
