"""Notification schemas: a person's in-app list and the read mark."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import Field

from idgov.web.schemas import ListParams, PageOut, ReadModel


class NotificationRead(ReadModel):
    """One message to the caller, as the in-app list shows it."""

    id: uuid.UUID
    kind: str = Field(description="What happened, e.g. approval.waiting, request.decided")
    subject: str
    body: str
    object_type: str | None = Field(description="What the message is about, e.g. request_line")
    object_id: str | None
    created_at: datetime
    read_at: datetime | None = Field(description="When the person marked it read; null: unread")
    email_state: str = Field(
        description="pending: to be mailed; sent; failed: gave up after retries; "
                    "skipped: the person has no email address")
    sent_at: datetime | None


NotificationPage = PageOut[NotificationRead]


class NotificationFilter(ListParams):
    """The caller's notifications, newest first."""

    unread: bool | None = Field(
        default=None, description="true: only those not read yet; false: only those read")
