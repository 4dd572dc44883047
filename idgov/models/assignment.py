"""Assignments: the desired state. Identity x role or entitlement, end-dated, never deleted."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from idgov.db.base import Base, IdMixin, TimestampMixin

ASSIGNMENT_SOURCES = ("request", "birthright", "admin", "aggregation")


class Assignment(IdMixin, TimestampMixin, Base):
    """One identity holds one role or one entitlement from ``valid_from`` until ended."""

    __tablename__ = "assignments"
    __table_args__ = (
        CheckConstraint(
            "(role_id IS NULL) <> (entitlement_id IS NULL)", name="role_xor_entitlement"
        ),
        CheckConstraint(
            "source IN ('request', 'birthright', 'admin', 'aggregation')", name="source"
        ),
        Index("ix_assignments_identity_id", "identity_id"),
        Index("ix_assignments_role_id", "role_id"),
        Index("ix_assignments_entitlement_id", "entitlement_id"),
    )

    identity_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("identities.id", ondelete="RESTRICT")
    )
    role_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("roles.id", ondelete="RESTRICT"))
    entitlement_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("entitlements.id", ondelete="RESTRICT")
    )
    source: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(String(2000))
    request_line_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    # The birthright rule that gave a ``birthright`` assignment (movers recompute by rule).
    birthright_rule_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("birthright_rules.id", ondelete="RESTRICT")
    )
    granted_by: Mapped[str | None] = mapped_column(String(400))
    valid_from: Mapped[datetime]
    valid_until: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    revoked_by: Mapped[str | None] = mapped_column(String(400))
    revoke_reason: Mapped[str | None] = mapped_column(String(2000))
    last_certified_at: Mapped[datetime | None]
    last_certified_by: Mapped[str | None] = mapped_column(String(400))
