"""The HR lifecycle: sources, feed runs and their changes, scheduled lifecycle events,
birthright rules, day-one access links and access flagged for review after a move."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, CheckConstraint, Float, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from idgov.db.base import Base, IdMixin, TimestampMixin

HR_SOURCE_KINDS = ("csv", "json", "scim")
FEED_MODES = ("snapshot", "delta")
FEED_CHANNELS = ("file", "upload", "push", "scim")
# running: being read and compared; held: over a safety threshold, waits for an
# administrator; applied: done (rows rejected, if any, are in ``errors``); rejected: an
# administrator refused a held run, or an all-or-nothing source had a bad row; failed: an
# unexpected error, nothing applied.
FEED_RUN_STATES = ("running", "held", "applied", "rejected", "failed")
CHANGE_KINDS = ("joiner", "mover", "leaver", "rehire", "conversion", "update")
CHANGE_STATES = ("planned", "applied", "discarded")
LIFECYCLE_EVENT_KINDS = ("activate", "terminate", "delete_accounts")
LIFECYCLE_EVENT_STATES = ("scheduled", "done", "cancelled")
DAY_ONE_STATES = ("open", "redeemed", "expired", "revoked")
REVIEW_FLAG_STATES = ("open", "kept", "revoked", "closed")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class HrSource(IdMixin, TimestampMixin, Base):
    """One HR feed: how its records are read (column mapping) and how cautiously they are
    applied (thresholds, all-or-nothing), with the lifecycle timings it asks for."""

    __tablename__ = "hr_sources"
    __table_args__ = (
        CheckConstraint(_in("kind", HR_SOURCE_KINDS), name="kind"),
        CheckConstraint(_in("default_mode", FEED_MODES), name="default_mode"),
    )

    name: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(16), default="csv")
    description: Mapped[str | None] = mapped_column(String(2000))
    # canonical field -> the column header (CSV) or key (JSON) the HR system uses.
    column_mapping: Mapped[dict[str, Any]] = mapped_column(default=dict)
    default_mode: Mapped[str] = mapped_column(String(16), default="snapshot")
    all_or_nothing: Mapped[bool] = mapped_column(Boolean, default=False)
    termination_threshold_percent: Mapped[float] = mapped_column(Float, default=5.0)
    change_threshold: Mapped[int | None] = mapped_column(Integer)
    mover_grace_days: Mapped[int] = mapped_column(Integer, default=7)
    account_retention_days: Mapped[int] = mapped_column(Integer, default=30)
    default_time_zone: Mapped[str] = mapped_column(String(64), default="UTC")
    # location -> IANA time zone, for workers whose record names no zone.
    location_time_zones: Mapped[dict[str, Any]] = mapped_column(default=dict)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)


class FeedRun(IdMixin, Base):
    """One reading of a feed: what it found (counts, row errors) and what became of it."""

    __tablename__ = "hr_feed_runs"
    __table_args__ = (
        CheckConstraint(_in("mode", FEED_MODES), name="mode"),
        CheckConstraint(_in("channel", FEED_CHANNELS), name="channel"),
        CheckConstraint(_in("state", FEED_RUN_STATES), name="state"),
        Index("ix_hr_feed_runs_source_started", "source_id", "started_at"),
        Index("ix_hr_feed_runs_state", "state"),
    )

    source_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("hr_sources.id",
                                                            ondelete="RESTRICT"))
    mode: Mapped[str] = mapped_column(String(16))
    channel: Mapped[str] = mapped_column(String(16))
    file_name: Mapped[str | None] = mapped_column(String(500))
    file_sha256: Mapped[str | None] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16), default="running")
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    started_by: Mapped[str | None] = mapped_column(String(400))
    # {rows, joiners, movers, leavers, rehires, conversions, updates, unchanged, rejected}
    counts: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # [{row, column, employee_id, message}]
    errors: Mapped[list[Any]] = mapped_column(default=list)
    hold_reason: Mapped[str | None] = mapped_column(String(2000))
    decided_by: Mapped[str | None] = mapped_column(String(400))
    decided_at: Mapped[datetime | None]
    decision_note: Mapped[str | None] = mapped_column(String(2000))


class FeedChange(IdMixin, Base):
    """One identity's change found by a run: planned while the run is held, applied after.
    ``before``/``after`` are the compared HR fields; ``changed`` names those that differ."""

    __tablename__ = "hr_feed_changes"
    __table_args__ = (
        CheckConstraint(_in("kind", CHANGE_KINDS), name="kind"),
        CheckConstraint(_in("state", CHANGE_STATES), name="state"),
        Index("ix_hr_feed_changes_run_id", "run_id", "seq"),
        Index("ix_hr_feed_changes_identity_id", "identity_id"),
        Index("ix_hr_feed_changes_kind_applied_at", "kind", "applied_at"),
    )

    run_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("hr_feed_runs.id",
                                                         ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)
    row_number: Mapped[int | None] = mapped_column(Integer)
    employee_id: Mapped[str] = mapped_column(String(64))
    identity_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("identities.id", ondelete="RESTRICT"))
    kind: Mapped[str] = mapped_column(String(16))
    changed: Mapped[list[Any]] = mapped_column(default=list)
    before: Mapped[dict[str, Any] | None]
    after: Mapped[dict[str, Any] | None]
    effective_at: Mapped[datetime | None]
    state: Mapped[str] = mapped_column(String(16), default="planned")
    applied_at: Mapped[datetime | None]


class LifecycleEvent(IdMixin, Base):
    """Something due to happen to an identity at ``due_at``: a prehire becoming active, a
    termination taking effect, a leaver's accounts being deleted after the retention period."""

    __tablename__ = "lifecycle_events"
    __table_args__ = (
        CheckConstraint(_in("kind", LIFECYCLE_EVENT_KINDS), name="kind"),
        CheckConstraint(_in("state", LIFECYCLE_EVENT_STATES), name="state"),
        Index("ix_lifecycle_events_state_due_at", "state", "due_at"),
        Index("ix_lifecycle_events_identity_id", "identity_id"),
    )

    identity_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("identities.id",
                                                              ondelete="RESTRICT"))
    kind: Mapped[str] = mapped_column(String(32))
    due_at: Mapped[datetime]
    state: Mapped[str] = mapped_column(String(16), default="scheduled")
    run_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("hr_feed_runs.id", ondelete="SET NULL"))
    change_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("hr_feed_changes.id", ondelete="SET NULL"))
    reason: Mapped[str | None] = mapped_column(String(2000))
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime]
    done_at: Mapped[datetime | None]


class BirthrightRule(IdMixin, TimestampMixin, Base):
    """Who gets a role or entitlement by virtue of their HR attributes. ``condition`` is the
    expression :mod:`idgov.policy.birthright` evaluates."""

    __tablename__ = "birthright_rules"
    __table_args__ = (
        CheckConstraint("(role_id IS NULL) <> (entitlement_id IS NULL)",
                        name="role_xor_entitlement"),
    )

    name: Mapped[str] = mapped_column(String(200), unique=True)
    description: Mapped[str | None] = mapped_column(String(2000))
    condition: Mapped[dict[str, Any]] = mapped_column(default=dict)
    role_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("roles.id",
                                                                 ondelete="RESTRICT"))
    entitlement_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("entitlements.id", ondelete="RESTRICT"))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)


class DayOneLink(IdMixin, Base):
    """An expiring, single-use link that lets a joiner set up first access where the target
    has no mechanism of its own; sent to the manager. Only the token's SHA-256 is kept."""

    __tablename__ = "day_one_links"
    __table_args__ = (
        CheckConstraint(_in("state", DAY_ONE_STATES), name="state"),
        Index("uq_day_one_links_token_hash", "token_hash", unique=True),
        Index("ix_day_one_links_identity_id", "identity_id"),
    )

    identity_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("identities.id",
                                                              ondelete="RESTRICT"))
    token_hash: Mapped[str] = mapped_column(String(64))
    sent_to_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("identities.id", ondelete="SET NULL"))
    application_ids: Mapped[list[Any]] = mapped_column(default=list)
    state: Mapped[str] = mapped_column(String(16), default="open")
    created_at: Mapped[datetime]
    not_before: Mapped[datetime | None]
    expires_at: Mapped[datetime]
    redeemed_at: Mapped[datetime | None]
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)


class ReviewFlag(IdMixin, Base):
    """Requested access that depended on a mover's old position, flagged for review by the
    new manager (certification turns these into micro-campaigns)."""

    __tablename__ = "review_flags"
    __table_args__ = (
        CheckConstraint(_in("state", REVIEW_FLAG_STATES), name="state"),
        Index("ix_review_flags_reviewer_state", "reviewer_id", "state"),
        Index("ix_review_flags_assignment_id", "assignment_id"),
    )

    identity_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("identities.id",
                                                              ondelete="RESTRICT"))
    assignment_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("assignments.id",
                                                                ondelete="RESTRICT"))
    reviewer_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("identities.id", ondelete="SET NULL"))
    change_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("hr_feed_changes.id", ondelete="SET NULL"))
    reason: Mapped[str] = mapped_column(String(2000))
    state: Mapped[str] = mapped_column(String(16), default="open")
    created_at: Mapped[datetime]
    closed_at: Mapped[datetime | None]
    closed_by: Mapped[str | None] = mapped_column(String(400))
