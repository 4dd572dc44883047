"""Certification's tables: campaigns, their review items, reviewers' sign-offs.

They share the core's declarative base (one schema, one Alembic history) but live here:
the core never imports them.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Uuid,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from idgov.db.base import Base, IdMixin, TimestampMixin

CAMPAIGN_KINDS = ("manager", "owner", "application", "privileged", "composition", "micro")
CAMPAIGN_STATES = ("draft", "active", "closed", "cancelled")
DEADLINE_ACTIONS = ("revoke", "keep", "escalate")
DECISIONS = ("pending", "certify", "revoke")
# none: nothing to remediate (pending, certified); requested: the revoke was sent to the
# core (assignment ended, operations recorded); confirmed: a reconciliation read of the
# target shows the access gone; failed: an operation of the removal failed (stays visible);
# escalated: auto-revocation refused (last owner / administrator / break-glass).
REMEDIATION_STATES = ("none", "requested", "confirmed", "failed", "escalated")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Campaign(IdMixin, TimestampMixin, Base):
    """One certification campaign: what is in scope, who reviews, by when, and what
    happens to what is left undecided."""

    __tablename__ = "cert_campaigns"
    __table_args__ = (
        CheckConstraint(_in("kind", CAMPAIGN_KINDS), name="kind"),
        CheckConstraint(_in("state", CAMPAIGN_STATES), name="state"),
        CheckConstraint(_in("deadline_action", DEADLINE_ACTIONS), name="deadline_action"),
        Index("ix_cert_campaigns_state", "state"),
        Index("ix_cert_campaigns_schedule_id", "schedule_id"),
    )

    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(String(2000))
    kind: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16), default="draft")
    # Filters over identities, applications, entitlements, roles, risk (certification/scoping).
    scope: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # The reviewer chain after the kind's primary reviewer, e.g.
    # ["manager_of_manager", "owner", "group"].
    fallbacks: Mapped[list[Any]] = mapped_column(default=list)
    fallback_group_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("groups.id", ondelete="SET NULL"))
    starts_at: Mapped[datetime]
    deadline_at: Mapped[datetime]
    reminder_days: Mapped[list[Any]] = mapped_column(default=list)  # days before the deadline
    escalate_after_days: Mapped[int | None] = mapped_column(Integer)
    deadline_action: Mapped[str] = mapped_column(String(16), default="escalate")
    trigger: Mapped[str] = mapped_column(String(32), default="manual")
    trigger_ref: Mapped[str | None] = mapped_column(String(200))
    created_by: Mapped[str | None] = mapped_column(String(400))
    generated_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    counts: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # The recurring schedule that made this campaign (certification/schedules), if any.
    schedule_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("cert_schedules.id", ondelete="SET NULL"))


class CampaignSchedule(IdMixin, TimestampMixin, Base):
    """A recurring campaign: a definition (the fields of a campaign but its dates) and a
    recurrence; each occurrence creates and launches a campaign of ``duration_days``."""

    __tablename__ = "cert_schedules"
    __table_args__ = (Index("ix_cert_schedules_due", "enabled", "next_run_at"),)

    name: Mapped[str] = mapped_column(String(200), unique=True)
    # kind, description, scope, fallbacks, fallback_group_id, reminder_days,
    # escalate_after_days, deadline_action: as in a campaign's definition.
    definition: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # A cron expression (five fields) or a preset: monthly, quarterly, semiannually, yearly.
    recurrence: Mapped[str] = mapped_column(String(200))
    time_zone: Mapped[str] = mapped_column(String(64), default="UTC")
    duration_days: Mapped[int] = mapped_column(Integer)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    next_run_at: Mapped[datetime | None]
    last_run_at: Mapped[datetime | None]
    last_campaign_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    last_error: Mapped[str | None] = mapped_column(String(2000))
    created_by: Mapped[str | None] = mapped_column(String(400))


class ReviewItem(Base):
    """One assignment in a campaign's scope, as it stood at generation, with its reviewer's
    decision and what became of it."""

    __tablename__ = "cert_review_items"
    __table_args__ = (
        CheckConstraint(_in("decision", DECISIONS), name="decision"),
        CheckConstraint(_in("remediation", REMEDIATION_STATES), name="remediation"),
        Index("ix_cert_review_items_campaign_reviewer", "campaign_id", "reviewer_id",
              "decision"),
        Index("ix_cert_review_items_assignment_id", "assignment_id"),
        Index("ix_cert_review_items_campaign_identity", "campaign_id", "identity_id"),
        # Partial: empty for the many assignment items, which then pay nothing for them.
        *(Index(f"ix_cert_review_items_{column}", column,
                postgresql_where=text(f"{column} IS NOT NULL"),
                sqlite_where=text(f"{column} IS NOT NULL"))
          for column in ("trigger_key", "role_entitlement_id", "role_inclusion_id")),
        # An item reviews either an assignment (who holds what) or a role composition link
        # (what a role includes: composition campaigns).
        CheckConstraint("(assignment_id IS NOT NULL AND identity_id IS NOT NULL) OR "
                        "role_entitlement_id IS NOT NULL OR role_inclusion_id IS NOT NULL",
                        name="subject"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    campaign_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("cert_campaigns.id", ondelete="CASCADE"))
    assignment_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("assignments.id", ondelete="RESTRICT"))
    # Composition campaigns: the link reviewed (role -> entitlement, role -> included role);
    # role_id names the role whose composition it is, entitlement_id / the link's child what
    # it includes. identity_id and assignment_id are then empty.
    role_entitlement_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("role_entitlements.id", ondelete="RESTRICT"))
    role_inclusion_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("role_inclusions.id", ondelete="RESTRICT"))
    # Copies of what the assignment (checked through assignment_id) points to, for filtering
    # without joins; no foreign keys of their own, which would cost every generated row.
    identity_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    role_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    entitlement_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    application_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    source: Mapped[str] = mapped_column(String(16))  # the assignment's source
    risk: Mapped[str] = mapped_column(String(16), default="low")
    privileged: Mapped[bool] = mapped_column(Boolean, default=False)
    sod_conflict: Mapped[bool] = mapped_column(Boolean, default=False)
    reviewer_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("identities.id", ondelete="SET NULL"))
    reviewer_group_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("groups.id", ondelete="SET NULL"))
    original_reviewer_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    decision: Mapped[str] = mapped_column(String(16), default="pending")
    decided_at: Mapped[datetime | None]
    decided_by: Mapped[str | None] = mapped_column(String(400))
    comment: Mapped[str | None] = mapped_column(String(4000))
    remediation: Mapped[str] = mapped_column(String(16), default="none")
    remediated_at: Mapped[datetime | None]
    # What the reviewer sees that generation fixed: how it was granted (request number,
    # approvers), last certified, path of the role, peers' share... (certification/context).
    context: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # Micro-certifications: what event made the item, e.g. "sod_exception:<id>:<expiry>",
    # "unused:<assignment>:<last sign-in>", "aggregation:<assignment>"; one item per key.
    trigger_key: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime]


class ReviewerSignoff(Base):
    """A reviewer closed their part of a campaign: their decisions are final."""

    __tablename__ = "cert_signoffs"

    campaign_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("cert_campaigns.id", ondelete="CASCADE"), primary_key=True)
    reviewer_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("identities.id", ondelete="RESTRICT"), primary_key=True)
    signed_off_at: Mapped[datetime]
