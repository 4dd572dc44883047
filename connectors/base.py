"""The protocol every connector implements, and the values that cross it.

A connector is built from an application's settings and its decrypted credentials and talks
to one target. Every operation is idempotent: ``create_account`` creates if absent (and
answers the existing account when it is the same person), ``grant`` ensures membership,
``revoke`` ensures absence. Failures are raised as :mod:`connectors.errors`. Connectors
import nothing of ``idgov``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Generic, Protocol, TypeVar, runtime_checkable

T = TypeVar("T")

# Capabilities a connector may declare.
CAN_CREATE = "create_account"
CAN_UPDATE = "update_account"
CAN_ENABLE_DISABLE = "enable_disable"
CAN_DELETE = "delete_account"
CAN_GRANT = "grant"
CAN_LIST_ACCOUNTS = "list_accounts"
CAN_LIST_ENTITLEMENTS = "list_entitlements"
CAN_LAST_SIGN_IN = "last_sign_in"
# Operations are not executed by software: they become tasks for people (manual fulfilment).
MANUAL = "manual"

ALL_CAPABILITIES = frozenset({CAN_CREATE, CAN_UPDATE, CAN_ENABLE_DISABLE, CAN_DELETE,
                              CAN_GRANT, CAN_LIST_ACCOUNTS, CAN_LIST_ENTITLEMENTS,
                              CAN_LAST_SIGN_IN})

# First access (optional, beyond the Connector protocol; each has its small protocol below).
# The target emails the person a link to set up their own credentials (Keycloak's required
# actions by email).
CAN_ACTIVATION_EMAIL = "activation_email"
# The target issues a temporary access pass for the person's first sign-in (Entra ID).
CAN_TEMPORARY_ACCESS = "temporary_access_pass"
# The target takes a password chosen by the person (LDAP userPassword).
CAN_SET_PASSWORD = "set_password"  # noqa: S105 (a capability's name)
FIRST_ACCESS_CAPABILITIES = (CAN_ACTIVATION_EMAIL, CAN_TEMPORARY_ACCESS, CAN_SET_PASSWORD)


@dataclass(frozen=True)
class AccountSpec:
    """An account to create: its login name and attributes in the target's vocabulary
    (e.g. ``{"givenName": ..., "sn": ..., "mail": ..., "departmentNumber": ...}``)."""

    username: str
    attributes: Mapping[str, Any] = field(default_factory=dict)
    enabled: bool = True


@dataclass(frozen=True)
class AccountRef:
    """An account as the target names it: ``native_id`` (DN, object id, user id) and the
    login name."""

    native_id: str
    username: str


@dataclass(frozen=True)
class AccountInfo:
    """An account read back from the target (aggregation, reconciliation)."""

    native_id: str
    username: str
    attributes: Mapping[str, Any] = field(default_factory=dict)
    enabled: bool = True
    last_sign_in: datetime | None = None


@dataclass(frozen=True)
class EntitlementInfo:
    """A grantable thing read back from the target, with the native ids of its members."""

    native_id: str
    name: str
    kind: str = "group"
    members: tuple[str, ...] = ()


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a listing; ``next_cursor`` is None on the last page."""

    items: tuple[T, ...]
    next_cursor: str | None = None


@dataclass(frozen=True)
class TemporaryAccessPass:
    """A temporary access pass a target issued: the secret ``value`` (never logged nor
    stored; shown once to the person it is for), when it starts and how long it lasts."""

    value: str = field(repr=False)
    starts_at: datetime
    lifetime_minutes: int
    usable_once: bool
    method_id: str = ""

    @property
    def expires_at(self) -> datetime:
        return self.starts_at + timedelta(minutes=self.lifetime_minutes)


@runtime_checkable
class Connector(Protocol):
    """What the provisioning engine, aggregation and reconciliation call."""

    kind: str
    capabilities: frozenset[str]

    def test_connection(self) -> None:
        """Reach the target and authenticate; raise a ConnectorError when that fails."""
        ...

    def create_account(self, spec: AccountSpec) -> AccountRef:
        """Create the account if absent; the existing one when it is the same account
        (same username and identifying attributes); DataError when the name is taken by
        an account with different identifying attributes."""
        ...

    def update_account(self, ref: AccountRef, attributes: Mapping[str, Any]) -> None:
        """Set these attributes (others unchanged)."""
        ...

    def enable_account(self, ref: AccountRef) -> None: ...

    def disable_account(self, ref: AccountRef) -> None: ...

    def delete_account(self, ref: AccountRef) -> None:
        """Delete if present (absent is success)."""
        ...

    def grant(self, ref: AccountRef, entitlement: str) -> None:
        """Ensure ``ref`` holds the entitlement named by its native id."""
        ...

    def revoke(self, ref: AccountRef, entitlement: str) -> None:
        """Ensure ``ref`` does not hold the entitlement (absent is success)."""
        ...

    def list_accounts(self, *, cursor: str | None = None,
                      page_size: int = 500) -> Page[AccountInfo]: ...

    def list_entitlements(self, *, cursor: str | None = None,
                          page_size: int = 500) -> Page[EntitlementInfo]: ...

    def last_sign_in(self, ref: AccountRef) -> datetime | None:
        """When the account last signed in, where the target tells (None otherwise)."""
        ...

    def close(self) -> None:
        """Release connections and pools."""
        ...


@runtime_checkable
class ActivationEmail(Protocol):
    """Capability ``activation_email``: the target itself emails the person a link to set up
    their credentials (their email address must be on the account)."""

    def send_activation_email(self, ref: AccountRef, *, lifespan_seconds: int,
                              actions: Sequence[str] | None = None) -> None:
        """Email the account's owner a link, valid ``lifespan_seconds``, to complete
        ``actions`` (None: the connector's configured ones). DataError when the account has
        no email address or does not exist."""
        ...


@runtime_checkable
class TemporaryAccess(Protocol):
    """Capability ``temporary_access_pass``: the target issues a time-limited pass for a
    first sign-in."""

    def issue_temporary_access_pass(self, ref: AccountRef, *, lifetime_minutes: int,
                                    usable_once: bool,
                                    starts_at: datetime | None = None) -> TemporaryAccessPass:
        """A new pass for the account (any earlier pass of the account is replaced)."""
        ...


@runtime_checkable
class PasswordSetter(Protocol):
    """Capability ``set_password``: the target takes a password the person chose."""

    def set_password(self, ref: AccountRef, password: str) -> None:
        """Replace the account's password (stored the target's way, e.g. salted hash)."""
        ...


def first_access_method(connector: Connector) -> str | None:
    """How first access reaches a person on this connector's target: its own email
    (``activation_email``), else a pass or a password the person receives through a one-time
    link (``temporary_access_pass``, ``set_password``); None when it has no such way."""
    checks: tuple[tuple[str, type[Any]], ...] = (
        (CAN_ACTIVATION_EMAIL, ActivationEmail), (CAN_TEMPORARY_ACCESS, TemporaryAccess),
        (CAN_SET_PASSWORD, PasswordSetter))
    for capability, protocol in checks:
        if capability in connector.capabilities and isinstance(connector, protocol):
            return capability
    return None
