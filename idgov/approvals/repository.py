"""Approval queries: who may decide a step (directly or through a delegation), inboxes, lists."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, case, exists, or_, select
from sqlalchemy.orm import Session

from idgov.approvals.schemas import ApprovalFilter, DelegationFilter
from idgov.models.application import Application
from idgov.models.catalog import Entitlement, Role
from idgov.models.identity import GroupMember, Identity
from idgov.models.requests import (
    RISK_LEVELS,
    AccessRequest,
    Approval,
    ApprovalStep,
    ApprovalStepApprover,
    Delegation,
    RequestLine,
)


def risk_rank_sql(column: Any) -> ColumnElement[int]:
    """0 for low .. 3 for critical, computed by the database."""
    return case({level: rank for rank, level in enumerate(RISK_LEVELS)}, value=column, else_=99)


def delegation_in_force(at: datetime) -> ColumnElement[bool]:
    """Delegations that let their delegate decide at ``at``."""
    return and_(Delegation.revoked_at.is_(None), Delegation.starts_at <= at,
                Delegation.ends_at > at)


def delegations_for_step(session: Session, *, step_id: uuid.UUID, delegate_id: uuid.UUID,
                         risk: str, at: datetime) -> list[Delegation]:
    """Delegations in force at ``at`` from an approver of the step to ``delegate_id`` whose
    risk ceiling covers ``risk``, oldest first."""
    stmt = (
        select(Delegation)
        .join(ApprovalStepApprover, ApprovalStepApprover.identity_id == Delegation.delegator_id)
        .where(ApprovalStepApprover.step_id == step_id, Delegation.delegate_id == delegate_id,
               delegation_in_force(at),
               risk_rank_sql(Delegation.max_risk) >= RISK_LEVELS.index(risk))
        .order_by(Delegation.starts_at, Delegation.id)
    )
    return list(session.scalars(stmt))


def may_decide(identity_id: uuid.UUID, at: datetime) -> ColumnElement[bool]:
    """Steps (joined with their line and request) ``identity_id`` may decide at ``at``:
    as a named approver, or as the delegate of one for a line within the delegation's risk
    ceiling; never a step of a line the person requested or benefits from."""
    direct = exists().where(ApprovalStepApprover.step_id == ApprovalStep.id,
                            ApprovalStepApprover.identity_id == identity_id)
    delegated = exists().where(
        ApprovalStepApprover.step_id == ApprovalStep.id,
        Delegation.delegator_id == ApprovalStepApprover.identity_id,
        Delegation.delegate_id == identity_id,
        delegation_in_force(at),
        risk_rank_sql(Delegation.max_risk) >= risk_rank_sql(RequestLine.risk),
    )
    return and_(
        or_(direct, delegated),
        AccessRequest.requester_id != identity_id,
        RequestLine.beneficiary_id != identity_id,
    )


def steps_with_context() -> Select[Any]:
    """Steps joined with their line and request."""
    return (select(ApprovalStep)
            .join(RequestLine, RequestLine.id == ApprovalStep.line_id)
            .join(AccessRequest, AccessRequest.id == RequestLine.request_id))


def waiting_steps(identity_id: uuid.UUID, at: datetime) -> Select[Any]:
    """The waiting steps ``identity_id`` may decide at ``at``."""
    return steps_with_context().where(ApprovalStep.state == "waiting",
                                      may_decide(identity_id, at))


def visible_to(identity_id: uuid.UUID, at: datetime) -> ColumnElement[bool]:
    """Row rule for a person: steps they are (or were) an approver of, steps they decided,
    and steps they may decide now as a delegate."""
    named = exists().where(ApprovalStepApprover.step_id == ApprovalStep.id,
                           ApprovalStepApprover.identity_id == identity_id)
    decided = exists().where(Approval.step_id == ApprovalStep.id,
                             Approval.approver_id == identity_id)
    return or_(named, decided, may_decide(identity_id, at))


def list_query(filters: ApprovalFilter) -> Select[Any]:
    stmt = steps_with_context()
    if filters.state is not None:
        stmt = stmt.where(ApprovalStep.state == filters.state)
    if filters.line_id is not None:
        stmt = stmt.where(ApprovalStep.line_id == filters.line_id)
    if filters.identity_id is not None:
        stmt = stmt.where(exists().where(ApprovalStepApprover.step_id == ApprovalStep.id,
                                         ApprovalStepApprover.identity_id == filters.identity_id))
    return stmt


def approvers_of(session: Session, step_id: uuid.UUID) -> list[ApprovalStepApprover]:
    return list(session.scalars(
        select(ApprovalStepApprover).where(ApprovalStepApprover.step_id == step_id)
        .order_by(ApprovalStepApprover.added_at, ApprovalStepApprover.identity_id)))


def approvals_of(session: Session, step_id: uuid.UUID) -> list[Approval]:
    return list(session.scalars(
        select(Approval).where(Approval.step_id == step_id)
        .order_by(Approval.decided_at, Approval.id)))


def steps_of_line(session: Session, line_id: uuid.UUID) -> list[ApprovalStep]:
    return list(session.scalars(
        select(ApprovalStep).where(ApprovalStep.line_id == line_id)
        .order_by(ApprovalStep.stage, ApprovalStep.id)))


def active_identities(session: Session, ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
    """Those of ``ids`` that are active people."""
    if not ids:
        return set()
    return set(session.scalars(select(Identity.id).where(
        Identity.id.in_(list(ids)), Identity.lifecycle_state == "active")))


def active_group_members(session: Session, group_id: uuid.UUID) -> list[uuid.UUID]:
    return list(session.scalars(
        select(GroupMember.identity_id)
        .join(Identity, Identity.id == GroupMember.identity_id)
        .where(GroupMember.group_id == group_id, Identity.lifecycle_state == "active")
        .order_by(Identity.display_name, Identity.id)))


def item_owner_and_application_owner(
    session: Session, line: RequestLine,
) -> tuple[uuid.UUID | None, uuid.UUID | None]:
    """The owner of the line's role or entitlement, and (for an entitlement) its
    application's owner."""
    if line.role_id is not None:
        return session.scalar(select(Role.owner_id).where(Role.id == line.role_id)), None
    row = session.execute(
        select(Entitlement.owner_id, Application.owner_id)
        .join(Application, Application.id == Entitlement.application_id)
        .where(Entitlement.id == line.entitlement_id)).one_or_none()
    if row is None:
        return None, None
    return row[0], row[1]


def item_name(session: Session, line: RequestLine) -> str | None:
    if line.role_id is not None:
        return session.scalar(select(Role.name).where(Role.id == line.role_id))
    return session.scalar(select(Entitlement.name).where(Entitlement.id == line.entitlement_id))


def delegation_list_query(filters: DelegationFilter, *, now: datetime) -> Select[Any]:
    stmt = select(Delegation)
    if filters.delegator_id is not None:
        stmt = stmt.where(Delegation.delegator_id == filters.delegator_id)
    if filters.delegate_id is not None:
        stmt = stmt.where(Delegation.delegate_id == filters.delegate_id)
    if filters.active is True:
        stmt = stmt.where(delegation_in_force(now))
    elif filters.active is False:
        stmt = stmt.where(~delegation_in_force(now))
    return stmt
