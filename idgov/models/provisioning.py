"""Provisioning operations: the durable intent log between desired state and the targets.

Each change of an identity's effective entitlements becomes one operation row, with an
idempotency key, before anything is sent. The connectors issue adds the workers that claim
and execute them; until then operations wait in ``pending``.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from idgov.db.base import Base, IdMixin, TimestampMixin

OPERATION_ACTIONS = ("grant", "revoke")
OPERATION_STATES = ("pending", "running", "succeeded", "failed", "cancelled")
# What caused the operation: an assignment change, a role composition change, a sweep.
OPERATION_CAUSES = ("assignment", "catalog_change", "expiry")


class ProvisioningOperation(IdMixin, TimestampMixin, Base):
    """Grant or revoke one entitlement for one identity on the entitlement's application."""

    __tablename__ = "provisioning_operations"
    __table_args__ = (
        CheckConstraint("action IN ('grant', 'revoke')", name="action"),
        CheckConstraint(
            "state IN ('pending', 'running', 'succeeded', 'failed', 'cancelled')", name="state"),
        CheckConstraint(
            "cause IN ('assignment', 'catalog_change', 'expiry')", name="cause"),
        Index("uq_provisioning_operations_idempotency_key", "idempotency_key", unique=True),
        Index("ix_provisioning_operations_state", "state"),
        Index("ix_provisioning_operations_identity_id", "identity_id"),
        Index("ix_provisioning_operations_request_line_id", "request_line_id"),
    )

    idempotency_key: Mapped[str] = mapped_column(String(200))
    identity_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("identities.id", ondelete="RESTRICT"))
    application_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("applications.id", ondelete="RESTRICT"))
    entitlement_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("entitlements.id", ondelete="RESTRICT"))
    action: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16), default="pending")
    cause: Mapped[str] = mapped_column(String(32))
    cause_id: Mapped[str | None] = mapped_column(String(64))
    assignment_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("assignments.id", ondelete="RESTRICT"))
    request_line_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("request_lines.id", ondelete="RESTRICT"))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(String(2000))
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)
    completed_at: Mapped[datetime | None]
