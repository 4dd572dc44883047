"""Applications nobody can reach by API: their operations are done by people.

The provisioning engine never calls these methods for real work: it turns each operation of
a manual application into a fulfilment task for the application's resolution group. The
connector exists so that every application has one (health, the registry), and it refuses
everything else with NotSupported.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, NoReturn

from connectors.base import MANUAL, AccountInfo, AccountRef, AccountSpec, EntitlementInfo, Page
from connectors.errors import NotSupported


def _refuse(operation: str) -> NoReturn:
    raise NotSupported(f"{operation} is done by people on a manual application "
                       "(a fulfilment task), not by a connector")


class ManualConnector:
    """The connector of a manual application: only ``test_connection`` succeeds."""

    kind = "manual"
    capabilities: frozenset[str] = frozenset({MANUAL})

    def __init__(self, settings: Mapping[str, Any], credentials: Mapping[str, Any]) -> None:
        self.settings = settings

    def test_connection(self) -> None:
        """Nothing to reach: people are the target."""

    def create_account(self, spec: AccountSpec) -> AccountRef:
        _refuse("create_account")

    def update_account(self, ref: AccountRef, attributes: Mapping[str, Any]) -> None:
        _refuse("update_account")

    def enable_account(self, ref: AccountRef) -> None:
        _refuse("enable_account")

    def disable_account(self, ref: AccountRef) -> None:
        _refuse("disable_account")

    def delete_account(self, ref: AccountRef) -> None:
        _refuse("delete_account")

    def grant(self, ref: AccountRef, entitlement: str) -> None:
        _refuse("grant")

    def revoke(self, ref: AccountRef, entitlement: str) -> None:
        _refuse("revoke")

    def list_accounts(self, *, cursor: str | None = None,
                      page_size: int = 500) -> Page[AccountInfo]:
        _refuse("list_accounts")

    def list_entitlements(self, *, cursor: str | None = None,
                          page_size: int = 500) -> Page[EntitlementInfo]:
        _refuse("list_entitlements")

    def last_sign_in(self, ref: AccountRef) -> datetime | None:
        _refuse("last_sign_in")

    def close(self) -> None:
        """Nothing to release."""
