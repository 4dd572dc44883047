"""Schemas of the caller API: who am I, service principals, API tokens, service role grants.

No output schema carries a token's hash; the token text appears once, in ``TokenCreated``.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import Field

from idgov.web.schemas import ListParams, PageOut, ReadModel, StrictIn

ServiceRole = Literal["administrator", "auditor", "hr-system", "requester", "manager",
                      "approver", "owner"]
ExplicitServiceRole = Literal["administrator", "auditor", "hr-system"]

MAX_TOKEN_DAYS = 366


class MeIdentity(ReadModel):
    id: uuid.UUID
    employee_id: str
    display_name: str
    email: str | None
    lifecycle_state: str


class MeRead(ReadModel):
    """The caller as the service sees them."""

    kind: Literal["token", "oidc"] = Field(description="API token or OIDC sign-in")
    name: str
    identity: MeIdentity | None = Field(description="The person signed in (OIDC callers)")
    principal_id: uuid.UUID | None = Field(description="The service principal (API tokens)")
    roles: list[str] = Field(description="Service roles, explicit and derived, sorted")
    capabilities: list[str] = Field(description="What the roles allow, sorted")


class PrincipalCreate(StrictIn):
    name: str = Field(min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=2000)
    roles: list[ServiceRole] = Field(default_factory=list,
                                     description="The most its tokens may carry")


class PrincipalUpdate(StrictIn):
    """Partial update; lowering roles lowers what every token of the principal can do."""

    description: str | None = Field(default=None, max_length=2000)
    roles: list[ServiceRole] | None = None
    disabled: bool | None = Field(default=None, description="A disabled principal's tokens "
                                  "are refused")


class PrincipalRead(ReadModel):
    id: uuid.UUID
    name: str
    description: str | None
    roles: list[str]
    disabled: bool
    created_at: datetime
    updated_at: datetime


class PrincipalFilter(ListParams):
    name: str | None = None
    disabled: bool | None = None


class TokenCreate(StrictIn):
    principal_id: uuid.UUID
    name: str = Field(min_length=1, max_length=200)
    roles: list[ServiceRole] | None = Field(
        default=None, description="Default: all the principal's roles; never more")
    expires_in_days: int | None = Field(
        default=None, ge=1, le=MAX_TOKEN_DAYS,
        description="Lifetime in days (default: IDGOV_API_TOKEN_DEFAULT_DAYS)")


class TokenRead(ReadModel):
    """A token's metadata. The prefix identifies it; the secret is never shown again."""

    id: uuid.UUID
    principal_id: uuid.UUID
    name: str
    prefix: str
    roles: list[str]
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None
    created_at: datetime


class TokenCreated(TokenRead):
    token: str = Field(description="The token text: shown once, store it now")


class TokenFilter(ListParams):
    principal_id: uuid.UUID | None = None
    usable: bool | None = Field(default=None,
                                description="true: neither revoked nor expired; false: the rest")


class GrantCreate(StrictIn):
    identity_id: uuid.UUID
    role: ExplicitServiceRole


class GrantRead(ReadModel):
    id: uuid.UUID
    identity_id: uuid.UUID
    role: str
    granted_by: str | None
    created_at: datetime


class GrantFilter(ListParams):
    identity_id: uuid.UUID | None = None
    role: ExplicitServiceRole | None = None


PrincipalPage = PageOut[PrincipalRead]
TokenPage = PageOut[TokenRead]
GrantPage = PageOut[GrantRead]
