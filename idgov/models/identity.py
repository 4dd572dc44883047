"""People whose access is governed, and groups of people (teams, resolution groups)."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from idgov.db.base import Base, IdMixin, TimestampMixin

LIFECYCLE_STATES = ("prehire", "active", "suspended", "terminated")
EMPLOYMENT_TYPES = ("employee", "contractor", "intern", "temporary", "vendor")
GROUP_KINDS = ("team", "resolution")


class Identity(IdMixin, TimestampMixin, Base):
    """A person known to HR. ``employee_id`` is the HR key; everything else may change."""

    __tablename__ = "identities"
    __table_args__ = (
        CheckConstraint(
            "lifecycle_state IN ('prehire', 'active', 'suspended', 'terminated')",
            name="lifecycle_state",
        ),
        Index("ix_identities_manager_id", "manager_id"),
        Index("ix_identities_department", "department"),
    )

    employee_id: Mapped[str] = mapped_column(String(64), unique=True)
    given_name: Mapped[str] = mapped_column(String(200))
    family_name: Mapped[str] = mapped_column(String(200))
    display_name: Mapped[str] = mapped_column(String(400))
    email: Mapped[str | None] = mapped_column(String(320), unique=True)
    manager_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("identities.id", ondelete="SET NULL")
    )
    department: Mapped[str | None] = mapped_column(String(200))
    location: Mapped[str | None] = mapped_column(String(200))
    time_zone: Mapped[str | None] = mapped_column(String(64))
    job_code: Mapped[str | None] = mapped_column(String(64))
    job_title: Mapped[str | None] = mapped_column(String(200))
    cost_center: Mapped[str | None] = mapped_column(String(64))
    employment_type: Mapped[str] = mapped_column(String(32), default="employee")
    lifecycle_state: Mapped[str] = mapped_column(String(16), default="active")
    hire_date: Mapped[date | None]
    termination_date: Mapped[date | None]
    attributes: Mapped[dict[str, Any]] = mapped_column(default=dict)


class Group(IdMixin, TimestampMixin, Base):
    """A group of people: a team, or a resolution group that works failed operations."""

    __tablename__ = "groups"
    __table_args__ = (CheckConstraint("kind IN ('team', 'resolution')", name="kind"),)

    name: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(16), default="team")
    description: Mapped[str | None] = mapped_column(String(2000))
    email: Mapped[str | None] = mapped_column(String(320))
    owner_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("identities.id", ondelete="SET NULL")
    )


class GroupMember(Base):
    """Membership of one identity in one group."""

    __tablename__ = "group_members"
    __table_args__ = (Index("ix_group_members_identity_id", "identity_id"),)

    group_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("groups.id", ondelete="CASCADE"), primary_key=True
    )
    identity_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("identities.id", ondelete="CASCADE"), primary_key=True
    )
