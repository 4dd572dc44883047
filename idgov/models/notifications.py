"""The notification outbox: one row per message to one person, shown in-app and mailed."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from idgov.db.base import Base, IdMixin

# pending: to be mailed; sent; failed: gave up after retries; skipped: no address to mail.
EMAIL_STATES = ("pending", "sent", "failed", "skipped")


class Notification(IdMixin, Base):
    """One message to one person. ``dedupe_key`` makes a repeated notice a no-op (an expiry
    warning is sent once per assignment, however often the sweep runs)."""

    __tablename__ = "notifications"
    __table_args__ = (
        CheckConstraint("email_state IN ('pending', 'sent', 'failed', 'skipped')",
                        name="email_state"),
        Index("ix_notifications_recipient_id_created_at", "recipient_id", "created_at"),
        Index("ix_notifications_email_state_next_attempt_at", "email_state", "next_attempt_at"),
        Index("uq_notifications_dedupe_key", "dedupe_key", unique=True),
    )

    recipient_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("identities.id", ondelete="CASCADE"))
    email: Mapped[str | None] = mapped_column(String(320))
    kind: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str] = mapped_column(String(400))
    body: Mapped[str] = mapped_column(Text)
    object_type: Mapped[str | None] = mapped_column(String(64))
    object_id: Mapped[str | None] = mapped_column(String(64))
    dedupe_key: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime]
    read_at: Mapped[datetime | None]
    email_state: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(String(2000))
