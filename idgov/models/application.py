"""Target systems and the accounts that live in them."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    LargeBinary,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from idgov.db.base import Base, IdMixin, TimestampMixin

# "memory": an in-process fake target, for trials and tests of the engine.
CONNECTOR_KINDS = ("ldap", "entra", "keycloak", "manual", "memory")
RISK_LEVELS = ("low", "medium", "high", "critical")
ACCOUNT_TYPES = ("primary", "service", "shared", "administrative")
ACCOUNT_STATUSES = ("active", "disabled", "deleted")


class Application(IdMixin, TimestampMixin, Base):
    """A target system. Credentials are stored encrypted and never returned."""

    __tablename__ = "applications"
    __table_args__ = (
        CheckConstraint(
            "connector_kind IN ('ldap', 'entra', 'keycloak', 'manual', 'memory')",
            name="connector_kind"
        ),
        CheckConstraint("risk IN ('low', 'medium', 'high', 'critical')", name="risk"),
    )

    name: Mapped[str] = mapped_column(String(200), unique=True)
    description: Mapped[str | None] = mapped_column(String(2000))
    connector_kind: Mapped[str] = mapped_column(String(16))
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    credentials_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary)
    owner_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("identities.id", ondelete="SET NULL")
    )
    resolution_group_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("groups.id", ondelete="SET NULL")
    )
    risk: Mapped[str] = mapped_column(String(16), default="medium")
    # The engine sends at most this many operations a second to the target (None: no limit).
    rate_limit_per_second: Mapped[float | None] = mapped_column(Float)
    # Reconciliation's remediation may revoke memberships nobody assigned.
    remove_unassigned_access: Mapped[bool] = mapped_column(Boolean, default=False)


class Account(IdMixin, TimestampMixin, Base):
    """An account in a target. No identity and no owner: an orphan."""

    __tablename__ = "accounts"
    __table_args__ = (
        UniqueConstraint("application_id", "native_id"),
        CheckConstraint(
            "account_type IN ('primary', 'service', 'shared', 'administrative')",
            name="account_type",
        ),
        CheckConstraint("status IN ('active', 'disabled', 'deleted')", name="status"),
        # At most one primary account per identity and application.
        Index(
            "uq_accounts_primary_per_identity",
            "application_id",
            "identity_id",
            unique=True,
            sqlite_where=text("account_type = 'primary'"),
            postgresql_where=text("account_type = 'primary'"),
        ),
        Index("ix_accounts_identity_id", "identity_id"),
    )

    application_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("applications.id", ondelete="CASCADE")
    )
    native_id: Mapped[str] = mapped_column(String(500))
    username: Mapped[str | None] = mapped_column(String(320))
    account_type: Mapped[str] = mapped_column(String(16), default="primary")
    identity_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("identities.id", ondelete="SET NULL")
    )
    owner_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("identities.id", ondelete="SET NULL")
    )
    status: Mapped[str] = mapped_column(String(16), default="active")
    attributes: Mapped[dict[str, Any]] = mapped_column(default=dict)
