"""The contract every connector keeps, run against each target (slapd, the emulators, the
in-memory fake).

Subclass :class:`ConnectorContract` in a test module and provide two fixtures:

``connector``
    A :class:`connectors.base.Connector` for a clean target (no account that these tests
    create) holding at least two entitlements. Close it in the fixture's teardown.
``target_entitlements``
    The native ids of two or more of those entitlements (a list of str).

and, where the target's vocabulary differs from the defaults, override the hooks:

- :meth:`ConnectorContract.account_spec` -- an account to create, numbered ``n``;
- :meth:`ConnectorContract.clashing_spec` -- same username, other identifying attributes;
- :meth:`ConnectorContract.changed_attributes` -- attributes ``update_account`` sets;
- :meth:`ConnectorContract.attribute_value` -- one attribute read back from an AccountInfo;
- :meth:`ConnectorContract.unknown_entitlement` -- a well-formed native id nobody has.

A test whose capability the connector does not declare is skipped.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from connectors import base
from connectors.base import AccountInfo, AccountRef, AccountSpec, Connector, EntitlementInfo
from connectors.errors import (
    DATA_ERROR,
    PERMANENT_CATEGORIES,
    TRANSIENT_CATEGORIES,
    ConnectorError,
    DataError,
)


def require(connector: Connector, *capabilities: str) -> None:
    """Skip the running test unless ``connector`` declares every capability."""
    absent = [c for c in capabilities if c not in connector.capabilities]
    if absent:
        pytest.skip(f"{connector.kind} does not declare {', '.join(absent)}")


def all_accounts(connector: Connector, *, page_size: int = 500) -> list[AccountInfo]:
    """Every account of the target, walking the pages."""
    found: list[AccountInfo] = []
    cursor: str | None = None
    while True:
        page = connector.list_accounts(cursor=cursor, page_size=page_size)
        found.extend(page.items)
        if page.next_cursor is None:
            return found
        cursor = page.next_cursor


def all_entitlements(connector: Connector, *, page_size: int = 500) -> list[EntitlementInfo]:
    """Every entitlement of the target, walking the pages."""
    found: list[EntitlementInfo] = []
    cursor: str | None = None
    while True:
        page = connector.list_entitlements(cursor=cursor, page_size=page_size)
        found.extend(page.items)
        if page.next_cursor is None:
            return found
        cursor = page.next_cursor


def same_id(a: str, b: str) -> bool:
    """Native ids compared the way directories do (DNs are case-insensitive)."""
    return a.casefold() == b.casefold()


class ConnectorContract:
    """The contract tests; the subclass provides ``connector`` and ``target_entitlements``."""

    # ---- hooks -----------------------------------------------------------------------------

    def account_spec(self, n: int) -> AccountSpec:
        """An account numbered ``n``, in the target's vocabulary."""
        return AccountSpec(
            username=f"contract{n}",
            attributes={
                "cn": f"Contract Person {n}",
                "givenName": "Contract",
                "sn": f"Person{n}",
                "mail": f"contract{n}@example.org",
                "employeeNumber": f"C{n:05d}",
            },
        )

    def clashing_spec(self, spec: AccountSpec) -> AccountSpec:
        """Another person wanting the same username (different identifying attributes)."""
        attributes = dict(spec.attributes)
        attributes["mail"] = f"someone.else.{spec.username}@example.org"
        attributes["employeeNumber"] = "X99999"
        return AccountSpec(username=spec.username, attributes=attributes)

    def changed_attributes(self) -> Mapping[str, Any]:
        """Attributes that ``update_account`` sets and ``list_accounts`` reads back."""
        return {"sn": "Renamed"}

    def attribute_value(self, info: AccountInfo, name: str) -> Any:
        """One attribute of ``info``; a one-valued list counts as its value."""
        value = info.attributes.get(name)
        if isinstance(value, Sequence) and not isinstance(value, str | bytes) and len(value) == 1:
            return value[0]
        return value

    def unknown_entitlement(self, target_entitlements: Sequence[str]) -> str:
        """A well-formed native id of an entitlement that does not exist."""
        return "contract-no-such-entitlement"

    # ---- helpers ---------------------------------------------------------------------------

    def find_account(self, connector: Connector, ref: AccountRef) -> AccountInfo | None:
        """The listed account of ``ref``, by native id or username (a directory may move a
        disabled account and change its DN)."""
        matches = [a for a in all_accounts(connector)
                   if same_id(a.native_id, ref.native_id)
                   or a.username.casefold() == ref.username.casefold()]
        assert len(matches) <= 1, f"account {ref.username} listed {len(matches)} times"
        return matches[0] if matches else None

    def members_of(self, connector: Connector, entitlement: str) -> list[str]:
        matches = [e for e in all_entitlements(connector) if same_id(e.native_id, entitlement)]
        assert len(matches) == 1, f"entitlement {entitlement} listed {len(matches)} times"
        return list(matches[0].members)

    def holders(self, connector: Connector, entitlement: str, ref: AccountRef) -> int:
        """How many times ``ref`` is listed as a member of ``entitlement``."""
        return sum(1 for m in self.members_of(connector, entitlement)
                   if same_id(m, ref.native_id))

    # ---- the contract ----------------------------------------------------------------------

    def test_contract_capabilities_declared(self, connector: Connector) -> None:
        assert isinstance(connector, Connector)
        assert isinstance(connector.kind, str) and connector.kind
        assert isinstance(connector.capabilities, frozenset)
        assert connector.capabilities <= (base.ALL_CAPABILITIES | {base.MANUAL}
                                          | set(base.FIRST_ACCESS_CAPABILITIES))
        assert connector.capabilities

    def test_contract_test_connection(self, connector: Connector) -> None:
        connector.test_connection()  # raises a ConnectorError when it cannot

    def test_contract_create_is_idempotent(self, connector: Connector) -> None:
        require(connector, base.CAN_CREATE, base.CAN_LIST_ACCOUNTS)
        spec = self.account_spec(1)
        first = connector.create_account(spec)
        second = connector.create_account(spec)
        assert isinstance(first, AccountRef)
        assert same_id(first.native_id, second.native_id)
        assert first.username.casefold() == spec.username.casefold()
        listed = [a for a in all_accounts(connector)
                  if a.username.casefold() == spec.username.casefold()]
        assert len(listed) == 1
        assert same_id(listed[0].native_id, first.native_id)
        assert listed[0].enabled is True

    def test_contract_name_clash_is_data_error(self, connector: Connector) -> None:
        require(connector, base.CAN_CREATE, base.CAN_LIST_ACCOUNTS)
        spec = self.account_spec(2)
        ref = connector.create_account(spec)
        with pytest.raises(DataError) as raised:
            connector.create_account(self.clashing_spec(spec))
        assert raised.value.category == DATA_ERROR
        assert raised.value.transient is False
        # The existing account is left as it was, and nothing was duplicated.
        listed = [a for a in all_accounts(connector)
                  if a.username.casefold() == spec.username.casefold()]
        assert [a.native_id.casefold() for a in listed] == [ref.native_id.casefold()]

    def test_contract_update_changes_attributes(self, connector: Connector) -> None:
        require(connector, base.CAN_CREATE, base.CAN_UPDATE, base.CAN_LIST_ACCOUNTS)
        spec = self.account_spec(3)
        ref = connector.create_account(spec)
        changes = self.changed_attributes()
        connector.update_account(ref, changes)
        connector.update_account(ref, changes)  # setting the same values again is fine
        info = self.find_account(connector, ref)
        assert info is not None
        for name, value in changes.items():
            assert self.attribute_value(info, name) == value
        untouched = [n for n in spec.attributes if n not in changes]
        for name in untouched:
            if name in info.attributes:
                assert self.attribute_value(info, name) == spec.attributes[name]

    def test_contract_disable_enable_round_trip(self, connector: Connector) -> None:
        require(connector, base.CAN_CREATE, base.CAN_ENABLE_DISABLE, base.CAN_LIST_ACCOUNTS)
        ref = connector.create_account(self.account_spec(4))
        connector.disable_account(ref)
        connector.disable_account(ref)
        info = self.find_account(connector, ref)
        assert info is not None and info.enabled is False
        connector.enable_account(ref)
        connector.enable_account(ref)
        info = self.find_account(connector, ref)
        assert info is not None and info.enabled is True

    def test_contract_grant_is_idempotent(self, connector: Connector,
                                          target_entitlements: list[str]) -> None:
        require(connector, base.CAN_CREATE, base.CAN_GRANT, base.CAN_LIST_ENTITLEMENTS)
        ref = connector.create_account(self.account_spec(5))
        entitlement = target_entitlements[0]
        connector.grant(ref, entitlement)
        connector.grant(ref, entitlement)
        assert self.holders(connector, entitlement, ref) == 1
        assert self.holders(connector, target_entitlements[1], ref) == 0

    def test_contract_revoke_is_idempotent(self, connector: Connector,
                                           target_entitlements: list[str]) -> None:
        require(connector, base.CAN_CREATE, base.CAN_GRANT, base.CAN_LIST_ENTITLEMENTS)
        ref = connector.create_account(self.account_spec(6))
        first, second = target_entitlements[0], target_entitlements[1]
        connector.grant(ref, first)
        connector.grant(ref, second)
        connector.revoke(ref, first)
        connector.revoke(ref, first)
        assert self.holders(connector, first, ref) == 0
        assert self.holders(connector, second, ref) == 1

    def test_contract_revoke_of_non_member_succeeds(self, connector: Connector,
                                                    target_entitlements: list[str]) -> None:
        require(connector, base.CAN_CREATE, base.CAN_GRANT, base.CAN_LIST_ENTITLEMENTS)
        ref = connector.create_account(self.account_spec(7))
        connector.revoke(ref, target_entitlements[1])
        assert self.holders(connector, target_entitlements[1], ref) == 0

    def test_contract_grant_on_unknown_entitlement_is_data_error(
            self, connector: Connector, target_entitlements: list[str]) -> None:
        require(connector, base.CAN_CREATE, base.CAN_GRANT)
        ref = connector.create_account(self.account_spec(8))
        with pytest.raises(DataError) as raised:
            connector.grant(ref, self.unknown_entitlement(target_entitlements))
        assert raised.value.category == DATA_ERROR

    def test_contract_delete_is_idempotent(self, connector: Connector) -> None:
        require(connector, base.CAN_CREATE, base.CAN_DELETE, base.CAN_LIST_ACCOUNTS)
        ref = connector.create_account(self.account_spec(9))
        connector.delete_account(ref)
        connector.delete_account(ref)
        assert self.find_account(connector, ref) is None

    def test_contract_delete_removes_memberships(self, connector: Connector,
                                                 target_entitlements: list[str]) -> None:
        require(connector, base.CAN_CREATE, base.CAN_DELETE, base.CAN_GRANT,
                base.CAN_LIST_ENTITLEMENTS)
        ref = connector.create_account(self.account_spec(10))
        connector.grant(ref, target_entitlements[0])
        connector.delete_account(ref)
        assert self.holders(connector, target_entitlements[0], ref) == 0

    def test_contract_update_of_missing_account_is_data_error(self, connector: Connector) -> None:
        require(connector, base.CAN_CREATE, base.CAN_DELETE, base.CAN_UPDATE)
        ref = connector.create_account(self.account_spec(11))
        connector.delete_account(ref)
        with pytest.raises(ConnectorError) as raised:
            connector.update_account(ref, self.changed_attributes())
        assert isinstance(raised.value, DataError)
        assert raised.value.category == DATA_ERROR

    def test_contract_accounts_listing_pages(self, connector: Connector) -> None:
        require(connector, base.CAN_CREATE, base.CAN_LIST_ACCOUNTS)
        refs = [connector.create_account(self.account_spec(n)) for n in (21, 22, 23)]
        seen: list[str] = []
        cursor: str | None = None
        pages = 0
        while True:
            page = connector.list_accounts(cursor=cursor, page_size=1)
            pages += 1
            assert len(page.items) <= 1
            assert all(isinstance(item, AccountInfo) for item in page.items)
            seen.extend(item.native_id.casefold() for item in page.items)
            if page.next_cursor is None:
                break
            assert isinstance(page.next_cursor, str)
            cursor = page.next_cursor
            assert pages < 1000, "the cursor never ends"
        assert len(seen) == len(set(seen)), "an account was listed twice"
        assert {r.native_id.casefold() for r in refs} <= set(seen)
        assert len(seen) == len(all_accounts(connector))

    def test_contract_entitlements_listing_pages(self, connector: Connector,
                                                 target_entitlements: list[str]) -> None:
        require(connector, base.CAN_LIST_ENTITLEMENTS)
        seen: list[str] = []
        cursor: str | None = None
        pages = 0
        while True:
            page = connector.list_entitlements(cursor=cursor, page_size=1)
            pages += 1
            assert len(page.items) <= 1
            assert all(isinstance(item, EntitlementInfo) for item in page.items)
            seen.extend(item.native_id.casefold() for item in page.items)
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
            assert pages < 1000, "the cursor never ends"
        assert len(seen) == len(set(seen)), "an entitlement was listed twice"
        assert {e.casefold() for e in target_entitlements} <= set(seen)

    def test_contract_last_sign_in(self, connector: Connector) -> None:
        require(connector, base.CAN_CREATE, base.CAN_LAST_SIGN_IN)
        ref = connector.create_account(self.account_spec(12))
        # A fresh account has not signed in; the value is None or a datetime.
        value = connector.last_sign_in(ref)
        assert value is None or value.tzinfo is not None

    def test_contract_errors_are_classified(self, connector: Connector,
                                            target_entitlements: list[str]) -> None:
        require(connector, base.CAN_CREATE)
        spec = self.account_spec(13)
        connector.create_account(spec)
        with pytest.raises(ConnectorError) as raised:
            connector.create_account(self.clashing_spec(spec))
        error = raised.value
        assert error.category in PERMANENT_CATEGORIES | TRANSIENT_CATEGORIES
        assert error.transient is (error.category in TRANSIENT_CATEGORIES)
        assert str(error)  # a message a person can read

    # ---- first access (optional capabilities) ----------------------------------------------

    def test_contract_first_access_capabilities_come_with_their_methods(
            self, connector: Connector) -> None:
        protocols: dict[str, type[Any]] = {
            base.CAN_ACTIVATION_EMAIL: base.ActivationEmail,
            base.CAN_TEMPORARY_ACCESS: base.TemporaryAccess,
            base.CAN_SET_PASSWORD: base.PasswordSetter}
        for capability, protocol in protocols.items():
            if capability in connector.capabilities:
                assert isinstance(connector, protocol), capability
        method = base.first_access_method(connector)
        assert method is None or method in connector.capabilities

    def test_contract_first_access_to_a_deleted_account_is_a_data_error(
            self, connector: Connector) -> None:
        method = base.first_access_method(connector)
        if method is None:
            pytest.skip(f"{connector.kind} has no first-access capability")
        require(connector, base.CAN_CREATE, base.CAN_DELETE)
        ref = connector.create_account(self.account_spec(31))
        connector.delete_account(ref)
        with pytest.raises(DataError):
            if isinstance(connector, base.ActivationEmail) and method == base.CAN_ACTIVATION_EMAIL:
                connector.send_activation_email(ref, lifespan_seconds=3600)
            elif isinstance(connector, base.TemporaryAccess) \
                    and method == base.CAN_TEMPORARY_ACCESS:
                connector.issue_temporary_access_pass(ref, lifetime_minutes=60,
                                                      usable_once=True)
            elif isinstance(connector, base.PasswordSetter):
                connector.set_password(ref, "Day-one password 2026!")

    def test_contract_set_password(self, connector: Connector) -> None:
        require(connector, base.CAN_CREATE, base.CAN_SET_PASSWORD)
        assert isinstance(connector, base.PasswordSetter)
        ref = connector.create_account(self.account_spec(32))
        connector.set_password(ref, "Day-one password 2026!")
        connector.set_password(ref, "Another one, later 2026?")  # replacing is fine

    def test_contract_temporary_access_pass_replaces_the_previous_one(
            self, connector: Connector) -> None:
        require(connector, base.CAN_CREATE, base.CAN_TEMPORARY_ACCESS)
        assert isinstance(connector, base.TemporaryAccess)
        ref = connector.create_account(self.account_spec(33))
        first = connector.issue_temporary_access_pass(ref, lifetime_minutes=60,
                                                      usable_once=True)
        second = connector.issue_temporary_access_pass(ref, lifetime_minutes=120,
                                                       usable_once=False)
        assert first.value and second.value and first.value != second.value
        assert (second.lifetime_minutes, second.usable_once) == (120, False)
        assert second.starts_at.tzinfo is not None
        assert second.value not in repr(second)  # never in a log line
