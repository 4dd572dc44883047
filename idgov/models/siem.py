"""SIEM delivery: syslog sinks that receive the audit trail, each with its persisted cursor."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from idgov.db.base import Base, IdMixin, TimestampMixin


class SiemSink(IdMixin, TimestampMixin, Base):
    """A syslog receiver (RFC 5424 over TCP, optionally TLS) fed the sealed audit events in
    ``seq`` order. ``cursor_seq`` is the last event the receiver has acknowledged (written in
    the same transaction as nothing else: advanced only after the send succeeded), so a
    restart resumes after it: nothing lost, nothing sent twice."""

    __tablename__ = "siem_sinks"

    name: Mapped[str] = mapped_column(String(200), unique=True)
    host: Mapped[str] = mapped_column(String(255))
    port: Mapped[int] = mapped_column(Integer)
    tls: Mapped[bool] = mapped_column(Boolean, default=False)
    # PEM file of the CA that signed the receiver's certificate (TLS); None: system CAs.
    ca_file: Mapped[str | None] = mapped_column(String(1000))
    app_name: Mapped[str] = mapped_column(String(48), default="idgov")
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    cursor_seq: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"),
                                            default=0)
    last_sent_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(String(2000))
