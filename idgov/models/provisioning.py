"""Provisioning operations: the durable intent log between desired state and the targets.

Each change of an identity's effective entitlements (and of its accounts) becomes one
operation row, with an idempotency key, before anything is sent. Workers claim rows (the
table is the queue), run them through the application's connector in order per identity and
application, retry transient failures, and route permanent ones to people. A manual
application's operations become fulfilment tasks. Target health (a circuit breaker per
application), aggregation and reconciliation runs and their drift items live here too.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from idgov.db.base import Base, IdMixin, TimestampMixin

OPERATION_ACTIONS = ("create_account", "update_account", "enable_account", "disable_account",
                     "delete_account", "grant", "revoke", "deliver_access")
# pending: waits for a worker; running: claimed (lease_until); retry_scheduled: a transient
# failure, due again at next_attempt_at; failed: permanent or out of attempts, in the failed
# queue of the resolution group; rolled_back: undone by a compensating operation.
OPERATION_STATES = ("pending", "running", "succeeded", "retry_scheduled", "failed",
                    "cancelled", "rolled_back")
TERMINAL_STATES = ("succeeded", "failed", "cancelled", "rolled_back")
# What caused the operation: an assignment change, a role composition change, a sweep, an
# identity's attributes, reconciliation's remediation, a rollback, an administrator's retry.
OPERATION_CAUSES = ("assignment", "catalog_change", "expiry", "identity_change",
                    "reconciliation", "rollback", "lifecycle")
ERROR_CATEGORIES = ("system_unavailable", "timeout", "throttled", "data_error",
                    "policy_violation", "authentication", "not_supported")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class ProvisioningOperation(IdMixin, TimestampMixin, Base):
    """One change on one target for one identity: an account action, or granting or revoking
    one entitlement. ``ordinal`` orders the operations of an identity on an application (an
    account is created before its memberships; a leaver's disable is not overtaken)."""

    __tablename__ = "provisioning_operations"
    __table_args__ = (
        CheckConstraint(_in("action", OPERATION_ACTIONS), name="action"),
        CheckConstraint(_in("state", OPERATION_STATES), name="state"),
        CheckConstraint(_in("cause", OPERATION_CAUSES), name="cause"),
        CheckConstraint("error_category IS NULL OR " + _in("error_category", ERROR_CATEGORIES),
                        name="error_category"),
        Index("uq_provisioning_operations_idempotency_key", "idempotency_key", unique=True),
        Index("ix_provisioning_operations_state_next_attempt_at", "state", "next_attempt_at"),
        Index("ix_provisioning_operations_identity_application", "identity_id",
              "application_id", "ordinal"),
        Index("ix_provisioning_operations_identity_id", "identity_id"),
        Index("ix_provisioning_operations_request_line_id", "request_line_id"),
        Index("ix_provisioning_operations_cause", "cause", "cause_id", "action"),
    )

    idempotency_key: Mapped[str] = mapped_column(String(200))
    identity_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("identities.id", ondelete="RESTRICT"))
    application_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("applications.id", ondelete="RESTRICT"))
    entitlement_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("entitlements.id", ondelete="RESTRICT"))
    account_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("accounts.id", ondelete="SET NULL"))
    action: Mapped[str] = mapped_column(String(16))
    ordinal: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), default=0)
    state: Mapped[str] = mapped_column(String(16), default="pending")
    cause: Mapped[str] = mapped_column(String(32))
    cause_id: Mapped[str | None] = mapped_column(String(64))
    assignment_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("assignments.id", ondelete="RESTRICT"))
    request_line_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("request_lines.id", ondelete="RESTRICT"))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None]
    claimed_by: Mapped[str | None] = mapped_column(String(200))
    lease_until: Mapped[datetime | None]
    started_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(String(2000))
    error_category: Mapped[str | None] = mapped_column(String(32))
    resolution_group_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("groups.id", ondelete="SET NULL"))
    resolved_by: Mapped[str | None] = mapped_column(String(400))
    resolution_note: Mapped[str | None] = mapped_column(String(2000))
    compensates_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("provisioning_operations.id", ondelete="SET NULL"))
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)
    completed_at: Mapped[datetime | None]


TASK_STATES = ("open", "completed", "failed", "cancelled")


class FulfilmentTask(IdMixin, TimestampMixin, Base):
    """A manual application's operation, for a person of its resolution group to carry out.
    The operation follows the task: completed -> succeeded, failed -> failed."""

    __tablename__ = "fulfilment_tasks"
    __table_args__ = (
        CheckConstraint(_in("state", TASK_STATES), name="state"),
        Index("uq_fulfilment_tasks_operation_id", "operation_id", unique=True),
        Index("ix_fulfilment_tasks_group_state", "group_id", "state"),
    )

    operation_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("provisioning_operations.id", ondelete="RESTRICT"))
    application_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("applications.id", ondelete="RESTRICT"))
    group_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("groups.id", ondelete="SET NULL"))
    identity_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("identities.id", ondelete="RESTRICT"))
    summary: Mapped[str] = mapped_column(String(2000))
    state: Mapped[str] = mapped_column(String(16), default="open")
    due_at: Mapped[datetime | None]
    escalation_level: Mapped[int] = mapped_column(Integer, default=0)
    completed_by_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("identities.id", ondelete="SET NULL"))
    note: Mapped[str | None] = mapped_column(String(4000))
    completed_at: Mapped[datetime | None]


BREAKER_STATES = ("closed", "open", "half_open")


class TargetHealth(Base):
    """The circuit breaker and last health check of one application's target."""

    __tablename__ = "target_health"
    __table_args__ = (CheckConstraint(_in("state", BREAKER_STATES), name="state"),)

    application_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("applications.id", ondelete="CASCADE"), primary_key=True)
    state: Mapped[str] = mapped_column(String(16), default="closed")
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    opened_at: Mapped[datetime | None]
    next_probe_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(String(2000))
    last_error_category: Mapped[str | None] = mapped_column(String(32))
    last_checked_at: Mapped[datetime | None]
    last_success_at: Mapped[datetime | None]


RUN_KINDS = ("aggregation", "reconciliation")
RUN_STATES = ("running", "succeeded", "failed")
DRIFT_KINDS = ("orphan_account", "unassigned_membership", "missing_grant", "missing_account",
               "disabled_account_of_active_identity", "enabled_account_of_inactive_identity")


class ReconciliationRun(IdMixin, Base):
    """One aggregation or reconciliation of one application, with what it found."""

    __tablename__ = "reconciliation_runs"
    __table_args__ = (
        CheckConstraint(_in("kind", RUN_KINDS), name="kind"),
        CheckConstraint(_in("state", RUN_STATES), name="state"),
        Index("ix_reconciliation_runs_application_started", "application_id", "started_at"),
    )

    application_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("applications.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))
    remediate: Mapped[bool] = mapped_column(default=False)
    state: Mapped[str] = mapped_column(String(16), default="running")
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    counts: Mapped[dict[str, Any]] = mapped_column(default=dict)
    error: Mapped[str | None] = mapped_column(String(2000))
    started_by: Mapped[str | None] = mapped_column(String(400))


class DriftItem(IdMixin, Base):
    """One difference between a target and the desired state, found by a run."""

    __tablename__ = "drift_items"
    __table_args__ = (
        CheckConstraint(_in("kind", DRIFT_KINDS), name="kind"),
        Index("ix_drift_items_run_id", "run_id"),
    )

    run_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("reconciliation_runs.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(48))
    account_native_id: Mapped[str | None] = mapped_column(String(500))
    entitlement_native_id: Mapped[str | None] = mapped_column(String(500))
    identity_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("identities.id", ondelete="SET NULL"))
    account_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("accounts.id", ondelete="SET NULL"))
    entitlement_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("entitlements.id", ondelete="SET NULL"))
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)
    remediation_operation_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("provisioning_operations.id", ondelete="SET NULL"))
