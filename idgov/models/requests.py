"""Access requests: request types, requests and their lines, approval steps, delegations.

A request (``REQ-2026-000042``) asks for one or more lines (``RITM-2026-000107``), each a grant
or a revoke of one role or entitlement for the beneficiary. A line that needs people's
approval gets approval steps, one per stage; stages run in sequence, the approvers of a stage
in parallel. Numbers come from ``number_sequences`` and are never reused.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, CheckConstraint, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from idgov.db.base import Base, IdMixin, TimestampMixin

RISK_LEVELS = ("low", "medium", "high", "critical")

REQUEST_STATES = (
    "draft", "submitted", "pending_approval", "approved", "rejected", "cancelled",
    "provisioning", "fulfilled", "partially_fulfilled", "failed",
)
LINE_STATES = (
    "pending_approval", "approved", "rejected", "cancelled", "provisioning", "fulfilled",
    "failed", "rolled_back",
)
LINE_ACTIONS = ("grant", "revoke")
FULFILMENT_MODES = ("automatic", "manual")

# pending: its stage has not started; waiting: approvers may decide now.
STEP_STATES = ("pending", "waiting", "approved", "rejected", "cancelled", "skipped")
STEP_KINDS = ("manager", "owner", "group", "control_owner", "dual_control")
STEP_MODES = ("any", "all")
APPROVAL_DECISIONS = ("approve", "reject")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class NumberSequence(Base):
    """The last number handed out for one series (``REQ``, ``RITM``) in one year."""

    __tablename__ = "number_sequences"

    series: Mapped[str] = mapped_column(String(16), primary_key=True)
    year: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    last_value: Mapped[int] = mapped_column(Integer, default=0)


class RequestType(IdMixin, TimestampMixin, Base):
    """A kind of request with its own form (a JSON Schema) and its approval and fulfilment
    policy.

    ``approval_stages`` is an ordered list of stage specs, each
    ``{"approver": "manager" | "owner" | "group", "group_id": "<uuid>", "mode": "any" | "all"}``.
    Lines whose risk is at most ``auto_approve_max_risk`` (and that are not privileged and
    break no SoD rule) need no approval. Privileged or critical lines always end with a
    dual-control stage: two distinct approvers from ``dual_control_group_id`` (or, without a
    group, the item's owner and its application's owner). Items whose risk is at most
    ``automatic_max_risk`` and whose data classification is in
    ``automatic_classifications`` are fulfilled by connectors; the others by a person.
    """

    __tablename__ = "request_types"
    __table_args__ = (
        CheckConstraint(
            "auto_approve_max_risk IS NULL OR " + _in("auto_approve_max_risk", RISK_LEVELS),
            name="auto_approve_max_risk"),
        CheckConstraint(
            "automatic_max_risk IS NULL OR " + _in("automatic_max_risk", RISK_LEVELS),
            name="automatic_max_risk"),
        CheckConstraint("on_partial_failure IN ('keep', 'rollback')", name="on_partial_failure"),
    )

    key: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(String(2000))
    form_schema: Mapped[dict[str, Any]] = mapped_column(default=dict)
    approval_stages: Mapped[list[Any]] = mapped_column(default=list)
    auto_approve_max_risk: Mapped[str | None] = mapped_column(String(16))
    dual_control_group_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("groups.id", ondelete="SET NULL"))
    automatic_max_risk: Mapped[str | None] = mapped_column(String(16), default="high")
    automatic_classifications: Mapped[list[Any]] = mapped_column(default=list)
    duration_required: Mapped[bool] = mapped_column(Boolean, default=False)
    max_duration_days: Mapped[int | None] = mapped_column(Integer)
    approval_sla_hours: Mapped[int] = mapped_column(Integer, default=72)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # When some lines of a request fail: "keep" what was done (partially fulfilled) or
    # "rollback" the lines already done with compensating operations.
    on_partial_failure: Mapped[str] = mapped_column(String(16), default="keep")


class AccessRequest(IdMixin, TimestampMixin, Base):
    """One request: who asks, for whom, of which type, with the validated form data."""

    __tablename__ = "access_requests"
    __table_args__ = (
        CheckConstraint(_in("state", REQUEST_STATES), name="state"),
        Index("ix_access_requests_requester_id", "requester_id"),
        Index("ix_access_requests_beneficiary_id", "beneficiary_id"),
        Index("ix_access_requests_state", "state"),
    )

    number: Mapped[str] = mapped_column(String(32), unique=True)
    requester_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("identities.id", ondelete="RESTRICT"))
    beneficiary_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("identities.id", ondelete="RESTRICT"))
    request_type_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("request_types.id", ondelete="RESTRICT"))
    form_data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    urgent: Mapped[bool] = mapped_column(Boolean, default=False)
    state: Mapped[str] = mapped_column(String(32), default="draft")
    policy_version: Mapped[str | None] = mapped_column(String(32))
    submitted_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    cancel_reason: Mapped[str | None] = mapped_column(String(2000))


class RequestLine(IdMixin, TimestampMixin, Base):
    """One requested change: grant or revoke one role or entitlement, optionally time-bound.

    ``decision`` keeps the explained policy decision the line was submitted with (risk, SoD
    violations with their paths, the approvals it needs). ``assignment_id`` is the assignment
    the line created (grant) or ends (revoke).
    """

    __tablename__ = "request_lines"
    __table_args__ = (
        CheckConstraint(_in("state", LINE_STATES), name="state"),
        CheckConstraint(_in("action", LINE_ACTIONS), name="action"),
        CheckConstraint(_in("risk", RISK_LEVELS), name="risk"),
        CheckConstraint(_in("fulfilment", FULFILMENT_MODES), name="fulfilment"),
        CheckConstraint(
            "(role_id IS NULL) <> (entitlement_id IS NULL)", name="role_xor_entitlement"),
        Index("ix_request_lines_request_id", "request_id"),
        Index("ix_request_lines_beneficiary_state", "beneficiary_id", "state"),
        Index("ix_request_lines_assignment_id", "assignment_id"),
    )

    number: Mapped[str] = mapped_column(String(32), unique=True)
    request_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("access_requests.id", ondelete="RESTRICT"))
    beneficiary_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("identities.id", ondelete="RESTRICT"))
    action: Mapped[str] = mapped_column(String(16), default="grant")
    role_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("roles.id", ondelete="RESTRICT"))
    entitlement_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("entitlements.id", ondelete="RESTRICT"))
    assignment_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("assignments.id", ondelete="RESTRICT"))
    valid_from: Mapped[datetime | None]
    valid_until: Mapped[datetime | None]
    state: Mapped[str] = mapped_column(String(32), default="pending_approval")
    risk: Mapped[str] = mapped_column(String(16), default="low")
    privileged: Mapped[bool] = mapped_column(Boolean, default=False)
    fulfilment: Mapped[str] = mapped_column(String(16), default="automatic")
    decision: Mapped[dict[str, Any]] = mapped_column(default=dict)
    mitigating_control: Mapped[str | None] = mapped_column(String(2000))
    control_owner_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("identities.id", ondelete="SET NULL"))
    exception_expires_at: Mapped[datetime | None]
    sod_exception_ids: Mapped[list[Any]] = mapped_column(default=list)
    state_reason: Mapped[str | None] = mapped_column(String(2000))
    decided_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]


class ApprovalStep(IdMixin, TimestampMixin, Base):
    """One stage of one line's approval: who may decide, how many must, and by when."""

    __tablename__ = "approval_steps"
    __table_args__ = (
        CheckConstraint(_in("state", STEP_STATES), name="state"),
        CheckConstraint(_in("kind", STEP_KINDS), name="kind"),
        CheckConstraint(_in("mode", STEP_MODES), name="mode"),
        Index("ix_approval_steps_line_id", "line_id"),
        Index("ix_approval_steps_state_due_at", "state", "due_at"),
    )

    line_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("request_lines.id", ondelete="RESTRICT"))
    stage: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(32))
    label: Mapped[str] = mapped_column(String(400))
    mode: Mapped[str] = mapped_column(String(8), default="any")
    required_approvals: Mapped[int] = mapped_column(Integer, default=1)
    group_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("groups.id", ondelete="SET NULL"))
    state: Mapped[str] = mapped_column(String(16), default="pending")
    activated_at: Mapped[datetime | None]
    due_at: Mapped[datetime | None]
    escalation_level: Mapped[int] = mapped_column(Integer, default=0)
    decided_at: Mapped[datetime | None]


class ApprovalStepApprover(Base):
    """A person who may decide a step: named by policy, or added by escalation."""

    __tablename__ = "approval_step_approvers"
    __table_args__ = (Index("ix_approval_step_approvers_identity_id", "identity_id"),)

    step_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("approval_steps.id", ondelete="CASCADE"), primary_key=True)
    identity_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("identities.id", ondelete="CASCADE"), primary_key=True)
    origin: Mapped[str] = mapped_column(String(16), default="policy")  # policy | escalation
    added_at: Mapped[datetime]


class Approval(IdMixin, Base):
    """One person's decision on one step, possibly for someone else (a delegation), possibly
    under their delegated authority level."""

    __tablename__ = "approvals"
    __table_args__ = (
        CheckConstraint(_in("decision", APPROVAL_DECISIONS), name="decision"),
        Index("uq_approvals_step_id_approver_id", "step_id", "approver_id", unique=True),
    )

    step_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("approval_steps.id", ondelete="RESTRICT"))
    approver_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("identities.id", ondelete="RESTRICT"))
    on_behalf_of_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("identities.id", ondelete="RESTRICT"))
    decision: Mapped[str] = mapped_column(String(16))
    comment: Mapped[str | None] = mapped_column(String(4000))
    authority: Mapped[str | None] = mapped_column(String(64))
    decided_at: Mapped[datetime]


class Delegation(IdMixin, TimestampMixin, Base):
    """``delegator`` lets ``delegate`` decide their approvals from ``starts_at`` to
    ``ends_at``, for lines of risk up to ``max_risk``."""

    __tablename__ = "approval_delegations"
    __table_args__ = (
        CheckConstraint(_in("max_risk", RISK_LEVELS), name="max_risk"),
        CheckConstraint("delegator_id <> delegate_id", name="not_self"),
        Index("ix_approval_delegations_delegator_id", "delegator_id"),
        Index("ix_approval_delegations_delegate_id", "delegate_id"),
    )

    delegator_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("identities.id", ondelete="CASCADE"))
    delegate_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("identities.id", ondelete="CASCADE"))
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]
    max_risk: Mapped[str] = mapped_column(String(16), default="medium")
    reason: Mapped[str | None] = mapped_column(String(2000))
    revoked_at: Mapped[datetime | None]


class ApprovalAuthority(IdMixin, TimestampMixin, Base):
    """A delegated authority level: this person may approve an urgent request's line alone
    when its risk is at most ``max_risk``."""

    __tablename__ = "approval_authorities"
    __table_args__ = (CheckConstraint(_in("max_risk", RISK_LEVELS), name="max_risk"),)

    identity_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("identities.id", ondelete="CASCADE"), unique=True)
    max_risk: Mapped[str] = mapped_column(String(16))
    granted_by: Mapped[str | None] = mapped_column(String(400))
