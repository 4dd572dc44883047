"""The day-one link API's bodies and answers."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

Method = Literal["set_password", "temporary_access_pass"]


class TokenIn(BaseModel):
    """The link's token: the part of the link after ``#``."""

    model_config = ConfigDict(extra="forbid")

    token: str = Field(min_length=16, max_length=200)


class RedeemIn(TokenIn):
    """The token and, when the link covers password applications, the person's new password
    (kept as it is typed: spaces count)."""

    password: SecretStr | None = Field(default=None, max_length=256)


class DayOneApplication(BaseModel):
    application_id: uuid.UUID
    name: str
    method: Method = Field(description="set_password: choose a password here; "
                                       "temporary_access_pass: receive a pass for a first "
                                       "sign-in")
    username: str | None = Field(description="The login name there (None: no account yet)")


class LookupOut(BaseModel):
    link_id: uuid.UUID
    display_name: str
    not_before: datetime | None = Field(description="The link works from then")
    expires_at: datetime
    applications: list[DayOneApplication]
    password_min_length: int


class TemporaryAccessPassOut(BaseModel):
    value: str = Field(description="Shown in this answer only")
    starts_at: datetime
    expires_at: datetime
    usable_once: bool


class RedeemedApplication(DayOneApplication):
    outcome: Literal["password_set", "pass_issued", "skipped", "failed", "not_tried"]
    temporary_access_pass: TemporaryAccessPassOut | None = None
    note: str | None = None


class RedeemOut(BaseModel):
    link_id: uuid.UUID
    display_name: str
    redeemed_at: datetime
    applications: list[RedeemedApplication]
