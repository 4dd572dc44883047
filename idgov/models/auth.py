"""Callers of the service itself: service principals, API tokens, explicit service roles."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, CheckConstraint, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from idgov.db.base import Base, IdMixin, TimestampMixin

# Service roles granted explicitly; the others (requester, manager, approver, owner) are
# derived from the data each time a caller is resolved.
EXPLICIT_SERVICE_ROLES = ("administrator", "auditor", "hr-system")
DERIVED_SERVICE_ROLES = ("requester", "manager", "approver", "owner")
SERVICE_ROLES = EXPLICIT_SERVICE_ROLES + DERIVED_SERVICE_ROLES


class ServicePrincipal(IdMixin, TimestampMixin, Base):
    """A machine caller (an HR feed, a SIEM pull, the bootstrap administrator)."""

    __tablename__ = "service_principals"

    name: Mapped[str] = mapped_column(String(200), unique=True)
    description: Mapped[str | None] = mapped_column(String(2000))
    roles: Mapped[list[Any]] = mapped_column(default=list)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)


class ApiToken(IdMixin, TimestampMixin, Base):
    """An API token, stored only as a hash and found by its public prefix."""

    __tablename__ = "api_tokens"
    __table_args__ = (Index("ix_api_tokens_principal_id", "principal_id"),)

    principal_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("service_principals.id", ondelete="CASCADE")
    )
    name: Mapped[str] = mapped_column(String(200))
    prefix: Mapped[str] = mapped_column(String(32), unique=True)
    secret_hash: Mapped[str] = mapped_column(String(128))
    roles: Mapped[list[Any]] = mapped_column(default=list)
    expires_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]


class ServiceRoleGrant(IdMixin, TimestampMixin, Base):
    """An explicit service role (administrator, auditor, hr-system) held by a person."""

    __tablename__ = "service_role_grants"
    __table_args__ = (
        UniqueConstraint("identity_id", "role"),
        CheckConstraint("role IN ('administrator', 'auditor', 'hr-system')", name="role"),
    )

    identity_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("identities.id", ondelete="CASCADE")
    )
    role: Mapped[str] = mapped_column(String(32))
    granted_by: Mapped[str | None] = mapped_column(String(400))
