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
GROUP_KINDS = ("team", "resolution", "organisation")


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
        Index("ix_identities_display_name", "display_name", "id"),
        Index("ix_identities_hr_source_id", "hr_source_id"),
        Index("ix_identities_external_id", "external_id"),
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
    # SCIM userName (unique, case-insensitive by convention) and the client's externalId.
    user_name: Mapped[str | None] = mapped_column(String(256), unique=True)
    external_id: Mapped[str | None] = mapped_column(String(256))
    # The HR source that owns this identity: a snapshot from it that omits the identity
    # means the person has left. None for identities created by hand.
    hr_source_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("hr_sources.id", ondelete="SET NULL")
    )


class Group(IdMixin, TimestampMixin, Base):
    """A group of people: a team, a resolution group that works failed operations, or an
    organisational group from HR (SCIM Groups) that birthright rules read."""

    __tablename__ = "groups"
    __table_args__ = (
        CheckConstraint("kind IN ('team', 'resolution', 'organisation')", name="kind"),
    )

    name: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(16), default="team")
    description: Mapped[str | None] = mapped_column(String(2000))
    email: Mapped[str | None] = mapped_column(String(320))
    owner_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("identities.id", ondelete="SET NULL")
    )
    # SCIM Groups are organisational groups (departments, teams) that birthright rules read.
    external_id: Mapped[str | None] = mapped_column(String(256))


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
