"""SIEM schemas: the pull endpoint's parameters, syslog sinks in and out."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import Field

from idgov.web.schemas import PageOut, ReadModel, StrictIn

PULL_DEFAULT_LIMIT = 500
PULL_MAX_LIMIT = 5000

# RFC 5424 APP-NAME: 1 to 48 printable US-ASCII characters, no space.
_APP_NAME = r"^[!-~]{1,48}$"
_HOST = r"^[^\s/]{1,255}$"


class EventPullParams(StrictIn):
    """Query of ``GET /siem/events``."""

    cursor: str | None = Field(default=None, description="X-Next-Cursor of the previous "
                               "response; absent: from the first event of the trail")
    limit: int = Field(default=PULL_DEFAULT_LIMIT, ge=1, le=PULL_MAX_LIMIT,
                       description="Most events in one response")


class SiemSinkCreate(StrictIn):
    name: str = Field(min_length=1, max_length=200, description="Unique name")
    host: str = Field(pattern=_HOST, description="Host name or IP address of the receiver; "
                      "with TLS, its certificate must name it")
    port: int = Field(ge=1, le=65535, description="TCP port (6514 is syslog over TLS)")
    tls: bool = Field(default=False, description="Wrap the connection in TLS (RFC 5425)")
    ca_file: str | None = Field(
        default=None, min_length=1, max_length=1000,
        description="PEM file, on the worker hosts, of the CA that signed the receiver's "
                    "certificate; absent: the system's CAs. Only with tls")
    app_name: str = Field(default="idgov", pattern=_APP_NAME,
                          description="APP-NAME of the messages (1-48 printable ASCII)")
    enabled: bool = True
    cursor_seq: int = Field(
        default=0, ge=0, description="Send the events after this seq: 0 sends the whole "
        "trail, the current head's seq only what happens from now on")


class SiemSinkUpdate(StrictIn):
    """Partial update: only the fields given change. Setting ``cursor_seq`` rewinds (sends
    again) or skips events; it is audited like every other change."""

    name: str | None = Field(default=None, min_length=1, max_length=200)
    host: str | None = Field(default=None, pattern=_HOST)
    port: int | None = Field(default=None, ge=1, le=65535)
    tls: bool | None = None
    ca_file: str | None = Field(default=None, min_length=1, max_length=1000)
    app_name: str | None = Field(default=None, pattern=_APP_NAME)
    enabled: bool | None = None
    cursor_seq: int | None = Field(default=None, ge=0)


class SiemSinkRead(ReadModel):
    id: uuid.UUID
    name: str
    host: str
    port: int
    tls: bool
    ca_file: str | None
    app_name: str
    enabled: bool
    cursor_seq: int = Field(description="The last event delivered to the receiver")
    behind: int = Field(description="Sealed events not yet delivered (chain head minus "
                        "cursor_seq)")
    last_sent_at: datetime | None = Field(description="When the last batch was delivered")
    last_error: str | None = Field(description="Why the last attempt failed; cleared by the "
                                   "next delivery")
    created_at: datetime
    updated_at: datetime


SiemSinkPage = PageOut[SiemSinkRead]
