"""The protocol every connector implements, and the values that cross it.

A connector is built from an application's settings and its decrypted credentials and talks
to one target. Every operation is idempotent: ``create_account`` creates if absent (and
answers the existing account when it is the same person), ``grant`` ensures membership,
``revoke`` ensures absence. Failures are raised as :mod:`connectors.errors`. Connectors
import nothing of ``idgov``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
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
