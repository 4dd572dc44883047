"""Request queries: lists and row rules, lines, steps, pending lines, duplicates."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Select, exists, or_, select
from sqlalchemy.orm import Session

from idgov.assignments.repository import not_ended, same_target
from idgov.models.assignment import Assignment
from idgov.models.catalog import Entitlement, Role
from idgov.models.requests import (
    AccessRequest,
    Approval,
    ApprovalStep,
    ApprovalStepApprover,
    Delegation,
    RequestLine,
)
from idgov.requests.schemas import RequestFilter
from idgov.requests.states import OPEN_REQUEST_STATES, PENDING_LINE_STATES


def list_query(filters: RequestFilter) -> Select[Any]:
    stmt = select(AccessRequest)
    for column in ("state", "beneficiary_id", "requester_id"):
        value = getattr(filters, column)
        if value is not None:
            stmt = stmt.where(getattr(AccessRequest, column) == value)
    return stmt


def own(person_id: uuid.UUID) -> Any:
    """Row rule of a person without requests:read: requests they made or that are for them."""
    return or_(AccessRequest.requester_id == person_id,
               AccessRequest.beneficiary_id == person_id)


def is_step_party(session: Session, *, request_id: uuid.UUID, person_id: uuid.UUID,
                  at: datetime) -> bool:
    """Whether the person is an approver of a step of the request, or the current delegate
    of one."""
    steps = (select(ApprovalStep.id).join(RequestLine, RequestLine.id == ApprovalStep.line_id)
             .where(RequestLine.request_id == request_id))
    delegators = select(Delegation.delegator_id).where(
        Delegation.delegate_id == person_id, Delegation.revoked_at.is_(None),
        Delegation.starts_at <= at, Delegation.ends_at > at)
    stmt = select(exists().where(
        ApprovalStepApprover.step_id.in_(steps),
        or_(ApprovalStepApprover.identity_id == person_id,
            ApprovalStepApprover.identity_id.in_(delegators))))
    return bool(session.scalar(stmt))


def lines_of(session: Session, request_id: uuid.UUID) -> list[RequestLine]:
    return list(session.scalars(select(RequestLine).where(RequestLine.request_id == request_id)
                                .order_by(RequestLine.number)))


def steps_of(session: Session, line_ids: Sequence[uuid.UUID]
             ) -> tuple[list[ApprovalStep], dict[uuid.UUID, list[uuid.UUID]],
                        dict[uuid.UUID, list[Approval]]]:
    """The steps of the lines, with the approvers and the approvals of each step."""
    if not line_ids:
        return [], {}, {}
    steps = list(session.scalars(select(ApprovalStep).where(ApprovalStep.line_id.in_(line_ids))
                                 .order_by(ApprovalStep.stage, ApprovalStep.created_at,
                                           ApprovalStep.id)))
    ids = [s.id for s in steps]
    approvers: dict[uuid.UUID, list[uuid.UUID]] = {}
    approvals: dict[uuid.UUID, list[Approval]] = {}
    if ids:
        for step_id, identity_id in session.execute(
                select(ApprovalStepApprover.step_id, ApprovalStepApprover.identity_id)
                .where(ApprovalStepApprover.step_id.in_(ids))
                .order_by(ApprovalStepApprover.added_at, ApprovalStepApprover.identity_id)):
            approvers.setdefault(step_id, []).append(identity_id)
        for approval in session.scalars(select(Approval).where(Approval.step_id.in_(ids))
                                        .order_by(Approval.decided_at, Approval.id)):
            approvals.setdefault(approval.step_id, []).append(approval)
    return steps, approvers, approvals


def item_names(session: Session, lines: Sequence[RequestLine]) -> dict[uuid.UUID, str]:
    """Names of the roles and entitlements the lines name, by id."""
    role_ids = {ln.role_id for ln in lines if ln.role_id is not None}
    ent_ids = {ln.entitlement_id for ln in lines if ln.entitlement_id is not None}
    names: dict[uuid.UUID, str] = {}
    if role_ids:
        names.update({i: n for i, n in session.execute(
            select(Role.id, Role.name).where(Role.id.in_(role_ids)))})
    if ent_ids:
        names.update({i: n for i, n in session.execute(
            select(Entitlement.id, Entitlement.name).where(Entitlement.id.in_(ent_ids)))})
    return names


def open_lines(session: Session, *, beneficiary_id: uuid.UUID,
               exclude_request_id: uuid.UUID | None = None
               ) -> list[tuple[RequestLine, AccessRequest]]:
    """The beneficiary's lines not yet carried out, in requests that were submitted."""
    stmt = (select(RequestLine, AccessRequest)
            .join(AccessRequest, AccessRequest.id == RequestLine.request_id)
            .where(RequestLine.beneficiary_id == beneficiary_id,
                   RequestLine.state.in_(PENDING_LINE_STATES),
                   AccessRequest.state.in_(OPEN_REQUEST_STATES)))
    if exclude_request_id is not None:
        stmt = stmt.where(AccessRequest.id != exclude_request_id)
    return [(ln, rq) for ln, rq in session.execute(stmt.order_by(RequestLine.number)).all()]


def live_assignment(session: Session, *, identity_id: uuid.UUID, role_id: uuid.UUID | None,
                    entitlement_id: uuid.UUID | None, at: datetime) -> Assignment | None:
    """The identity's assignment of the same thing that has not ended (the latest ending
    first: an open-ended one before a time-bound one)."""
    stmt = select(Assignment).where(
        same_target(identity_id=identity_id, role_id=role_id, entitlement_id=entitlement_id),
        not_ended(at))
    rows = list(session.scalars(stmt))
    if not rows:
        return None
    return max(rows, key=lambda a: (a.valid_until is None, a.valid_until or at))


def in_force_assignment(session: Session, *, identity_id: uuid.UUID, role_id: uuid.UUID | None,
                        entitlement_id: uuid.UUID | None, at: datetime) -> Assignment | None:
    stmt = select(Assignment).where(
        same_target(identity_id=identity_id, role_id=role_id, entitlement_id=entitlement_id),
        not_ended(at), Assignment.valid_from <= at)
    return session.scalars(stmt.order_by(Assignment.valid_from).limit(1)).first()


def classifications(session: Session, entitlement_ids: Sequence[uuid.UUID]
                    ) -> dict[uuid.UUID, tuple[str, str]]:
    """(name, data classification) of each entitlement."""
    if not entitlement_ids:
        return {}
    rows = session.execute(select(Entitlement.id, Entitlement.name,
                                  Entitlement.data_classification)
                           .where(Entitlement.id.in_(list(entitlement_ids))))
    return {i: (n, c) for i, n, c in rows}


def expiring_assignments(session: Session, *, now: datetime, until: datetime
                         ) -> list[Assignment]:
    """Assignments in force whose end falls in (now, until]."""
    return list(session.scalars(select(Assignment).where(
        Assignment.revoked_at.is_(None), Assignment.valid_from <= now,
        Assignment.valid_until.is_not(None), Assignment.valid_until > now,
        Assignment.valid_until <= until).order_by(Assignment.valid_until, Assignment.id)))


def expired_assignment_ids(session: Session, *, now: datetime) -> list[uuid.UUID]:
    """Assignments whose end has passed but that were not yet ended by a sweep."""
    return list(session.scalars(select(Assignment.id).where(
        Assignment.revoked_at.is_(None), Assignment.valid_until.is_not(None),
        Assignment.valid_until <= now).order_by(Assignment.valid_until, Assignment.id)))

