"""Recording the revoke operations of many assignments ended at once (a reviewer's sign-off).

:func:`plan_revocations` does for a list of assignments, ended one after another in the
given order, what :func:`idgov.provisioning.service.record_assignment_change` (change
``revoke``) does for each of them in turn, with a fixed number of statements instead of a few
per assignment: an entitlement an assignment gave is revoked unless another assignment of the
identity in force still gives it — an assignment further down the list still counts (it has
not ended yet), one earlier in the list no longer does. Same idempotency keys, same rows,
same order of ordinals; the caller writes the rows (:func:`operation_rows`) and their
``provisioning.record`` events with :func:`idgov.audit.service.record_many`.

:func:`cancel_pending_grants` does the same for assignments that never started (their grant
operations still pending are cancelled, nothing is revoked).

The two queries beneath (:func:`entitlements_given`, :func:`held_by_others`) also serve
certification's protection rule for a chunk of revocations.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import CTE, ColumnElement, and_, or_, select, union
from sqlalchemy.orm import Session

from idgov.assignments.repository import in_force
from idgov.audit.service import EventSpec, snapshot
from idgov.clock import Clock
from idgov.models.assignment import Assignment
from idgov.models.catalog import Entitlement, RoleEntitlement, RoleInclusion
from idgov.models.provisioning import ProvisioningOperation
from idgov.provisioning import repository
from idgov.provisioning.ordering import next_ordinal
from idgov.provisioning.service import idempotency_key

_COLUMNS = tuple(c.key for c in ProvisioningOperation.__table__.columns)
_UNAUDITED = ("created_at", "updated_at")


def _valid_at(model: Any, at: datetime) -> ColumnElement[bool]:
    return and_(model.valid_from <= at, or_(model.valid_until.is_(None), model.valid_until > at))


def _reach(seed: Any, at: datetime) -> CTE:
    """(key, role_id) for the seed's roles and every role they include at ``at``."""
    reach = seed.cte("reach", recursive=True)
    return reach.union(
        select(reach.c.key, RoleInclusion.child_role_id)
        .join(RoleInclusion, RoleInclusion.parent_role_id == reach.c.role_id)
        .where(_valid_at(RoleInclusion, at)))


def entitlements_given(session: Session, *, assignment_ids: Collection[uuid.UUID],
                       at: datetime) -> dict[uuid.UUID, list[tuple[uuid.UUID, uuid.UUID]]]:
    """What each assignment gives through the composition valid at ``at``, in one statement:
    assignment id -> [(entitlement id, application id)] (whether in force or not)."""
    ids = list(assignment_ids)
    seed = select(Assignment.id.label("key"), Assignment.role_id.label("role_id")).where(
        Assignment.id.in_(ids), Assignment.role_id.is_not(None))
    reach = _reach(seed, at)
    via_roles = (select(reach.c.key, RoleEntitlement.entitlement_id)
                 .join(reach, RoleEntitlement.role_id == reach.c.role_id)
                 .where(_valid_at(RoleEntitlement, at)))
    direct = select(Assignment.id, Assignment.entitlement_id).where(
        Assignment.id.in_(ids), Assignment.entitlement_id.is_not(None))
    pairs = union(via_roles, direct).subquery()
    stmt = (select(pairs.c[0], Entitlement.id, Entitlement.application_id)
            .join(Entitlement, Entitlement.id == pairs.c[1]))
    found: dict[uuid.UUID, list[tuple[uuid.UUID, uuid.UUID]]] = {i: [] for i in ids}
    for key, entitlement_id, application_id in session.execute(stmt):
        found[key].append((entitlement_id, application_id))
    for rows in found.values():
        rows.sort(key=lambda r: str(r[0]))
    return found


def held_by_others(session: Session, *, identity_ids: Collection[uuid.UUID],
                   exclude: Collection[uuid.UUID], at: datetime) -> dict[uuid.UUID, set[uuid.UUID]]:
    """identity id -> the entitlements its assignments in force at ``at`` give, leaving out
    the assignments ``exclude``, in one statement."""
    mine = [Assignment.identity_id.in_(list(identity_ids)), in_force(at)]
    if exclude:
        mine.append(Assignment.id.not_in(list(exclude)))
    seed = select(Assignment.identity_id.label("key"), Assignment.role_id.label("role_id")
                  ).where(*mine, Assignment.role_id.is_not(None))
    reach = _reach(seed, at)
    via_roles = (select(reach.c.key, RoleEntitlement.entitlement_id)
                 .join(reach, RoleEntitlement.role_id == reach.c.role_id)
                 .where(_valid_at(RoleEntitlement, at)))
    direct = select(Assignment.identity_id, Assignment.entitlement_id).where(
        *mine, Assignment.entitlement_id.is_not(None))
    found: dict[uuid.UUID, set[uuid.UUID]] = defaultdict(set)
    for identity_id, entitlement_id in session.execute(union(via_roles, direct)):
        found[identity_id].add(entitlement_id)
    return found


def plan_revocations(session: Session, *, assignments: Sequence[Assignment],
                     clock: Clock) -> dict[uuid.UUID, list[dict[str, Any]]]:
    """The revoke operations (complete rows, not written) of ending ``assignments`` one after
    another in this order, per assignment id; call it before they are ended. Assignments
    that have not started yet get none (see :func:`cancel_pending_grants`)."""
    now = clock.now()
    started = [a for a in assignments if a.valid_from <= now]
    plans: dict[uuid.UUID, list[dict[str, Any]]] = {a.id: [] for a in assignments}
    if not started:
        return plans
    ids = [a.id for a in started]
    gives = entitlements_given(session, assignment_ids=ids, at=now)
    held = held_by_others(session, identity_ids={a.identity_id for a in started},
                          exclude={a.id for a in assignments}, at=now)
    # The listed assignments still in force while the list is worked through, per identity.
    live: dict[uuid.UUID, list[Assignment]] = defaultdict(list)
    for a in started:
        live[a.identity_id].append(a)
    wanted: list[tuple[Assignment, uuid.UUID, uuid.UUID, str]] = []
    for a in started:
        live[a.identity_id].remove(a)
        elsewhere = set(held.get(a.identity_id, ()))
        for other in live[a.identity_id]:
            elsewhere.update(e for e, _app in gives[other.id])
        for entitlement_id, application_id in gives[a.id]:
            if entitlement_id in elsewhere:
                continue
            key = idempotency_key(cause="assignment", cause_id=str(a.id),
                                  identity_id=a.identity_id, entitlement_id=entitlement_id,
                                  action="revoke")
            wanted.append((a, entitlement_id, application_id, key))
    taken = repository.existing_keys(session, (w[3] for w in wanted))
    for a, entitlement_id, application_id, key in wanted:
        if key in taken:
            continue
        row: dict[str, Any] = dict.fromkeys(_COLUMNS)
        row.update(id=uuid.uuid4(), idempotency_key=key, identity_id=a.identity_id,
                   application_id=application_id, entitlement_id=entitlement_id,
                   action="revoke", ordinal=next_ordinal(), state="pending",
                   cause="assignment", cause_id=str(a.id), assignment_id=a.id,
                   request_line_id=a.request_line_id, attempts=0, detail={},
                   created_at=now, updated_at=now)
        plans[a.id].append(row)
    return plans


def record_event(row: dict[str, Any]) -> EventSpec:
    """The ``provisioning.record`` event of an operation row (as the one-by-one path
    writes it: every column but the timestamps)."""
    return EventSpec(action="provisioning.record", object_type="provisioning_operation",
                     object_id=row["id"],
                     after={k: v for k, v in row.items() if k not in _UNAUDITED})


def cancel_pending_grants(session: Session, *, assignment_ids: Collection[uuid.UUID],
                          clock: Clock) -> dict[uuid.UUID, list[EventSpec]]:
    """Cancel the grant operations still pending of assignments that end before they
    started; their ``provisioning.cancel`` events, per assignment id."""
    events: dict[uuid.UUID, list[EventSpec]] = defaultdict(list)
    if not assignment_ids:
        return events
    ops = session.scalars(
        select(ProvisioningOperation)
        .where(ProvisioningOperation.assignment_id.in_(list(assignment_ids)),
               ProvisioningOperation.action == "grant",
               ProvisioningOperation.state == "pending")
        .order_by(ProvisioningOperation.id))
    now = clock.now()
    for op in ops:
        before = snapshot(op)
        op.state, op.completed_at, op.updated_at = "cancelled", now, now
        assert op.assignment_id is not None
        events[op.assignment_id].append(EventSpec(
            action="provisioning.cancel", object_type="provisioning_operation",
            object_id=op.id, before=before, after=snapshot(op),
            context={"reason": "the assignment ended before it started"}))
    session.flush()
    return events
