"""Schemas of applications (target systems) and their accounts.

Credentials are write-only: they are accepted on create and update and never read back;
reads say only whether an application has some (``has_credentials``).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from idgov.web.schemas import ListParams, PageOut, ReadModel, StrictIn

ConnectorKind = Literal["ldap", "entra", "keycloak", "manual"]
Risk = Literal["low", "medium", "high", "critical"]
AccountType = Literal["primary", "service", "shared", "administrative"]
AccountStatus = Literal["active", "disabled", "deleted"]

_SETTINGS_HELP = ("Connector settings that are not secret (hosts, base DNs, tenant ids). "
                  "Keys that look secret are refused: put those in credentials.")
_CREDENTIALS_HELP = ("Write-only secrets of the connector (bind password, client secret), "
                     "encrypted at rest and never returned.")


def _credentials_field() -> Any:
    return Field(default=None, min_length=1, repr=False, description=_CREDENTIALS_HELP,
                 json_schema_extra={"writeOnly": True})


class ApplicationCreate(StrictIn):
    name: str = Field(min_length=1, max_length=200, description="Unique name")
    description: str | None = Field(default=None, max_length=2000)
    connector_kind: ConnectorKind
    settings: dict[str, Any] = Field(default_factory=dict, description=_SETTINGS_HELP)
    credentials: dict[str, Any] | None = _credentials_field()
    owner_id: uuid.UUID | None = None
    resolution_group_id: uuid.UUID | None = Field(
        default=None, description="Resolution group that works this target's failed operations")
    risk: Risk = "medium"


class ApplicationUpdate(StrictIn):
    """Partial update. ``credentials`` replaces the stored ones; ``null`` clears them."""

    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=2000)
    connector_kind: ConnectorKind | None = None
    settings: dict[str, Any] | None = Field(default=None, description=_SETTINGS_HELP)
    credentials: dict[str, Any] | None = _credentials_field()
    owner_id: uuid.UUID | None = None
    resolution_group_id: uuid.UUID | None = None
    risk: Risk | None = None


class ApplicationRead(ReadModel):
    id: uuid.UUID
    name: str
    description: str | None
    connector_kind: str
    settings: dict[str, Any]
    has_credentials: bool = Field(description="Whether credentials are stored (never shown)")
    owner_id: uuid.UUID | None
    resolution_group_id: uuid.UUID | None
    risk: str
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, application: Any) -> ApplicationRead:
        """Read an application row; only the presence of its credentials shows."""
        data = {name: getattr(application, name) for name in cls.model_fields
                if name != "has_credentials"}
        return cls(has_credentials=application.credentials_encrypted is not None, **data)


ApplicationPage = PageOut[ApplicationRead]


class ApplicationFilter(ListParams):
    connector_kind: ConnectorKind | None = None
    risk: Risk | None = None
    owner_id: uuid.UUID | None = None
    q: str | None = Field(default=None, description="Substring of the name or description")


class AccountCreate(StrictIn):
    application_id: uuid.UUID
    native_id: str = Field(min_length=1, max_length=500,
                           description="The account's id in the target (DN, object id, ...)")
    username: str | None = Field(default=None, max_length=320)
    account_type: AccountType = "primary"
    identity_id: uuid.UUID | None = Field(default=None, description="The person it belongs to")
    owner_id: uuid.UUID | None = Field(
        default=None, description="Who answers for a service, shared or administrative account")
    status: AccountStatus = "active"
    attributes: dict[str, Any] = Field(default_factory=dict)


class AccountUpdate(StrictIn):
    """Partial update; an account never moves to another application."""

    native_id: str | None = Field(default=None, min_length=1, max_length=500)
    username: str | None = Field(default=None, max_length=320)
    account_type: AccountType | None = None
    identity_id: uuid.UUID | None = None
    owner_id: uuid.UUID | None = None
    status: AccountStatus | None = None
    attributes: dict[str, Any] | None = None


class AccountRead(ReadModel):
    id: uuid.UUID
    application_id: uuid.UUID
    native_id: str
    username: str | None
    account_type: str
    identity_id: uuid.UUID | None
    owner_id: uuid.UUID | None
    status: str
    attributes: dict[str, Any]
    created_at: datetime
    updated_at: datetime


AccountPage = PageOut[AccountRead]


class AccountFilter(ListParams):
    application_id: uuid.UUID | None = None
    identity_id: uuid.UUID | None = None
    owner_id: uuid.UUID | None = None
    account_type: AccountType | None = None
    status: AccountStatus | None = None
    orphan: bool | None = Field(
        default=None, description="true: accounts with neither identity nor owner; "
                                  "false: accounts with one of them")
