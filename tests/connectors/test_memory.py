"""The in-memory target: the connector contract, its fault injection and the registry."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from connectors import registry
from connectors.base import MANUAL, AccountRef, AccountSpec, Connector
from connectors.errors import (
    AuthenticationFailed,
    ConnectorError,
    DataError,
    NotSupported,
    PolicyViolation,
    TargetTimeout,
    TargetUnavailable,
    Throttled,
)
from connectors.manual import ManualConnector
from connectors.memory import Call, MemoryConnector, MemoryTarget
from tests.connectors.contract import ConnectorContract, all_accounts, require

ENTITLEMENTS = ["g-finance", "g-sales", "r-approver"]


@pytest.fixture
def target() -> Iterator[MemoryTarget]:
    MemoryTarget.forget_all()
    target = MemoryTarget.get("contract")
    target.add_entitlement("g-finance", "Finance", "group")
    target.add_entitlement("g-sales", "Sales", "group")
    target.add_entitlement("r-approver", "Approver", "role")
    yield target
    MemoryTarget.forget_all()


@pytest.fixture
def connector(target: MemoryTarget) -> Iterator[Connector]:
    built = registry.build("memory", {"target": target.name}, {})
    yield built
    built.close()


@pytest.fixture
def target_entitlements() -> list[str]:
    return list(ENTITLEMENTS)


class TestMemoryContract(ConnectorContract):
    pass


def spec(username: str = "jsmith", **attributes: Any) -> AccountSpec:
    base = {"cn": "John Smith", "mail": "john.smith@example.org", "employeeNumber": "E1001"}
    return AccountSpec(username=username, attributes={**base, **attributes})


# ---- the registry and the fake's own rules ----------------------------------------------------


def test_registry_builds_a_memory_connector(target: MemoryTarget) -> None:
    built = registry.build("memory", {"target": "contract"}, {"password": "x"})
    assert isinstance(built, MemoryConnector)
    assert isinstance(built, Connector)
    assert built.kind == "memory"
    assert built.target is target
    assert registry.connector_class("memory") is MemoryConnector


def test_connectors_of_one_target_share_its_state(target: MemoryTarget) -> None:
    first = registry.build("memory", {"target": "contract"}, {})
    second = registry.build("memory", {"target": "contract"}, {})
    elsewhere = registry.build("memory", {"target": "another"}, {})
    ref = first.create_account(spec())
    second.grant(ref, "g-finance")
    assert target.members("g-finance") == {ref.native_id}
    assert [a.username for a in all_accounts(second)] == ["jsmith"]
    assert all_accounts(elsewhere) == []


def test_reset_empties_the_target(target: MemoryTarget, connector: Connector) -> None:
    connector.create_account(spec())
    target.down = True
    target.throttle()
    target.reset()
    assert target.accounts == {} and target.entitlements == {} and target.calls == []
    assert target.down is False and target.pending_faults == 0


def test_usernames_are_case_insensitive(connector: Connector) -> None:
    first = connector.create_account(spec("JSmith"))
    assert connector.create_account(spec("jsmith")) == first


def test_same_person_is_found_by_identifying_attributes(target: MemoryTarget,
                                                       connector: Connector) -> None:
    seeded = target.add_account("jsmith", {"mail": "john.smith@example.org",
                                           "employeeNumber": "E1001"})
    assert connector.create_account(spec()) == seeded
    with pytest.raises(DataError, match="employeeNumber differs"):
        connector.create_account(spec(employeeNumber="E2002"))
    with pytest.raises(DataError, match="mail differs"):
        connector.create_account(spec(mail="other@example.org"))
    assert len(target.accounts) == 1


def test_create_requires_a_username(connector: Connector) -> None:
    with pytest.raises(DataError):
        connector.create_account(AccountSpec(username=""))


OPERATIONS_ON_AN_ACCOUNT: list[tuple[str, Callable[[Connector, AccountRef], object]]] = [
    ("update_account", lambda c, r: c.update_account(r, {"sn": "X"})),
    ("enable_account", lambda c, r: c.enable_account(r)),
    ("disable_account", lambda c, r: c.disable_account(r)),
    ("grant", lambda c, r: c.grant(r, "g-finance")),
    ("last_sign_in", lambda c, r: c.last_sign_in(r)),
]


@pytest.mark.parametrize(("name", "operation"), OPERATIONS_ON_AN_ACCOUNT,
                         ids=[name for name, _ in OPERATIONS_ON_AN_ACCOUNT])
def test_operations_on_an_unknown_account_are_data_errors(
        connector: Connector, name: str,
        operation: Callable[[Connector, AccountRef], object]) -> None:
    with pytest.raises(DataError, match="no account 'contract-999999'"):
        operation(connector, AccountRef(native_id="contract-999999", username="ghost"))


def test_removing_absent_things_succeeds(target: MemoryTarget, connector: Connector) -> None:
    ghost = AccountRef(native_id="contract-999999", username="ghost")
    connector.delete_account(ghost)
    connector.revoke(ghost, "g-finance")
    connector.revoke(ghost, "no-such-group")
    assert [c.outcome for c in target.calls] == ["ok", "ok", "ok"]


def test_last_sign_in_is_settable(target: MemoryTarget, connector: Connector) -> None:
    ref = connector.create_account(spec())
    assert connector.last_sign_in(ref) is None
    when = datetime(2026, 1, 10, 8, 30, tzinfo=UTC)
    target.set_last_sign_in(ref.native_id, when)
    assert connector.last_sign_in(ref) == when
    assert [a.last_sign_in for a in all_accounts(connector)] == [when]


def test_an_invalid_cursor_is_a_data_error(connector: Connector) -> None:
    with pytest.raises(DataError, match="cursor"):
        connector.list_accounts(cursor="not a cursor!")
    with pytest.raises(DataError, match="cursor"):
        connector.list_entitlements(cursor="Ym9ndXM=")  # base64 of "bogus"


def test_listing_sees_accounts_created_between_pages(connector: Connector) -> None:
    connector.create_account(spec("a1", mail="a1@x", employeeNumber="1"))
    page = connector.list_accounts(page_size=1)
    connector.create_account(spec("a2", mail="a2@x", employeeNumber="2"))
    assert page.next_cursor is None  # one account when the first page was read
    first = connector.list_accounts(page_size=1)
    assert first.next_cursor is not None
    rest = connector.list_accounts(cursor=first.next_cursor, page_size=1)
    assert [a.username for a in first.items + rest.items] == ["a1", "a2"]
    assert rest.next_cursor is None


def test_entitlements_list_their_members(target: MemoryTarget, connector: Connector) -> None:
    ref = connector.create_account(spec())
    connector.grant(ref, "r-approver")
    listed = {e.native_id: (e.name, e.kind, e.members)
              for e in connector.list_entitlements().items}
    assert listed == {
        "g-finance": ("Finance", "group", ()),
        "g-sales": ("Sales", "group", ()),
        "r-approver": ("Approver", "role", (ref.native_id,)),
    }


def test_declared_capabilities_can_be_narrowed(target: MemoryTarget) -> None:
    narrow = registry.build("memory", {"target": "contract",
                                       "capabilities": ["list_accounts", "list_entitlements"]},
                            {})
    assert narrow.capabilities == frozenset({"list_accounts", "list_entitlements"})
    with pytest.raises(NotSupported):
        narrow.create_account(spec())
    assert target.accounts == {}
    with pytest.raises(pytest.skip.Exception):
        require(narrow, "create_account")


def test_the_call_log_records_every_call_and_its_outcome(target: MemoryTarget,
                                                         connector: Connector) -> None:
    ref = connector.create_account(spec())
    connector.grant(ref, "g-sales")
    with pytest.raises(DataError):
        connector.grant(ref, "g-nothing")
    assert target.calls == [
        Call("create_account", ("jsmith",), "ok"),
        Call("grant", (ref.native_id, "g-sales"), "ok"),
        Call("grant", (ref.native_id, "g-nothing"), "data_error"),
    ]
    assert target.count("grant") == 1
    assert target.count("grant", outcome=None) == 2


def test_concurrent_creates_make_one_account(target: MemoryTarget) -> None:
    barrier = threading.Barrier(8)
    refs: list[AccountRef] = []

    def create() -> None:
        connector = registry.build("memory", {"target": "contract"}, {})
        barrier.wait()
        refs.append(connector.create_account(spec()))

    threads = [threading.Thread(target=create) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(refs) == 8 and len(set(refs)) == 1
    assert len(target.accounts) == 1


# ---- fault injection --------------------------------------------------------------------------


def test_a_down_target_is_unavailable_until_it_is_back(target: MemoryTarget,
                                                       connector: Connector) -> None:
    target.down = True
    with pytest.raises(TargetUnavailable) as raised:
        connector.create_account(spec())
    assert (raised.value.category, raised.value.transient) == ("system_unavailable", True)
    with pytest.raises(TargetUnavailable):
        connector.test_connection()
    assert target.accounts == {}
    target.down = False
    connector.create_account(spec())
    assert [c.outcome for c in target.calls] == ["system_unavailable", "system_unavailable", "ok"]


def test_throttling_says_when_to_come_back(target: MemoryTarget, connector: Connector) -> None:
    target.throttle(retry_after=12, times=2)
    for _ in range(2):
        with pytest.raises(Throttled) as raised:
            connector.list_accounts()
        assert (raised.value.category, raised.value.retry_after) == ("throttled", 12)
        assert raised.value.transient is True
    assert connector.list_accounts().items == ()
    assert target.pending_faults == 0


def test_a_timeout_before_the_change_changes_nothing(target: MemoryTarget,
                                                     connector: Connector) -> None:
    target.timeout_next()
    with pytest.raises(TargetTimeout) as raised:
        connector.create_account(spec())
    assert raised.value.category == "timeout"
    assert target.accounts == {}
    connector.create_account(spec())
    assert len(target.accounts) == 1


def test_a_timeout_after_the_change_duplicates_nothing_on_retry(target: MemoryTarget,
                                                                connector: Connector) -> None:
    target.timeout_next(after_effect=True)
    with pytest.raises(TargetTimeout):
        connector.create_account(spec())
    assert len(target.accounts) == 1  # it landed; the answer was lost
    ref = connector.create_account(spec())
    target.timeout_next(after_effect=True)
    with pytest.raises(TargetTimeout):
        connector.grant(ref, "g-finance")
    connector.grant(ref, "g-finance")
    assert len(target.accounts) == 1
    assert target.members("g-finance") == {ref.native_id}
    assert (target.count("create_account", "timeout"), target.count("create_account")) == (1, 1)


def test_injected_failures_come_in_order_and_run_out(target: MemoryTarget,
                                                     connector: Connector) -> None:
    target.fail_next(PolicyViolation("insufficient access rights"), times=2)
    target.fail_next(DataError)
    ref = AccountRef(native_id="x", username="x")
    raised: list[ConnectorError] = []
    for _ in range(3):
        with pytest.raises(ConnectorError) as caught:
            connector.revoke(ref, "g-finance")
        raised.append(caught.value)
    assert [(type(e), str(e)) for e in raised] == [
        (PolicyViolation, "insufficient access rights"),
        (PolicyViolation, "insufficient access rights"),
        (DataError, "injected DataError"),
    ]
    assert raised[0] is not raised[1]
    connector.revoke(ref, "g-finance")


def test_wrong_credentials_fail_authentication(target: MemoryTarget) -> None:
    target.expected_password = "s3cret-value"
    wrong = registry.build("memory", {"target": "contract"}, {"password": "guess"})
    with pytest.raises(AuthenticationFailed) as raised:
        wrong.test_connection()
    assert raised.value.category == "authentication"
    assert "s3cret-value" not in str(raised.value) and "guess" not in str(raised.value)
    with pytest.raises(AuthenticationFailed):
        wrong.create_account(spec())
    assert target.accounts == {}
    right = registry.build("memory", {"target": "contract"}, {"password": "s3cret-value"})
    right.test_connection()


def test_the_expected_password_may_come_from_settings(target: MemoryTarget) -> None:
    settings = {"target": "contract", "expected_password": "from-settings"}
    with pytest.raises(AuthenticationFailed):
        registry.build("memory", settings, {}).test_connection()
    registry.build("memory", settings, {"password": "from-settings"}).test_connection()


# ---- the manual connector ---------------------------------------------------------------------

MANUAL_CALLS: list[tuple[str, Callable[[Connector], object]]] = [
    ("create_account", lambda c: c.create_account(spec())),
    ("update_account", lambda c: c.update_account(AccountRef("a", "a"), {"sn": "X"})),
    ("enable_account", lambda c: c.enable_account(AccountRef("a", "a"))),
    ("disable_account", lambda c: c.disable_account(AccountRef("a", "a"))),
    ("delete_account", lambda c: c.delete_account(AccountRef("a", "a"))),
    ("grant", lambda c: c.grant(AccountRef("a", "a"), "g")),
    ("revoke", lambda c: c.revoke(AccountRef("a", "a"), "g")),
    ("list_accounts", lambda c: c.list_accounts()),
    ("list_entitlements", lambda c: c.list_entitlements()),
    ("last_sign_in", lambda c: c.last_sign_in(AccountRef("a", "a"))),
]


def test_the_manual_connector_is_reachable_and_declares_manual() -> None:
    manual = registry.build("manual", {}, {})
    assert isinstance(manual, ManualConnector) and isinstance(manual, Connector)
    assert (manual.kind, manual.capabilities) == ("manual", frozenset({MANUAL}))
    manual.test_connection()
    manual.close()


@pytest.mark.parametrize(("name", "call"), MANUAL_CALLS, ids=[n for n, _ in MANUAL_CALLS])
def test_the_manual_connector_does_nothing_itself(
        name: str, call: Callable[[Connector], object]) -> None:
    with pytest.raises(NotSupported) as raised:
        call(registry.build("manual", {}, {}))
    assert raised.value.category == "not_supported"
    assert name in str(raised.value)
