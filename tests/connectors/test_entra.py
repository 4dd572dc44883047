"""The Entra connector against the Graph emulator over HTTPS (msal and httpx unchanged), and
opt-in real-tenant tests. The emulator's own strictness, from Microsoft's documented examples,
is tested in :mod:`test_entra_emulator`; the shared fixtures live in :mod:`entra_support`."""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from connectors.base import AccountRef, AccountSpec
from connectors.entra import EntraConnector
from connectors.errors import (
    AuthenticationFailed,
    DataError,
    PolicyViolation,
    TargetUnavailable,
    Throttled,
)
from tests.connectors import entra_support
from tests.connectors.contract import ConnectorContract, all_accounts, all_entitlements
from tests.connectors.entra_support import DOMAIN, app_role, group, spec
from tests.emulators.graph import GraphEmulator
from tests.emulators.serve import ServedApp

# The shared fixtures, bound here so that pytest finds them for this module.
pki = entra_support.pki
emulator = entra_support.emulator
served = entra_support.served
build = entra_support.build
connector = entra_support.connector


# ---- the contract -----------------------------------------------------------------------------

class TestEntraContract(ConnectorContract):
    @pytest.fixture
    def target_entitlements(self, emulator: GraphEmulator) -> list[str]:
        return [group(emulator, "finance"), app_role(emulator, "Payroll.Clerk"),
                group(emulator, "sales")]

    def account_spec(self, n: int) -> AccountSpec:
        return spec(f"contract{n}", f"C{n:05d}")

    def clashing_spec(self, spec: AccountSpec) -> AccountSpec:
        attributes = dict(spec.attributes)
        attributes.update(mail="someone.else@mail.example", employeeId="X99999")
        return AccountSpec(username=spec.username, attributes=attributes)

    def changed_attributes(self) -> dict[str, Any]:
        return {"surname": "Renamed", "department": "Audit"}

    def unknown_entitlement(self, target_entitlements: Any) -> str:
        return f"group:{uuid.uuid4()}"


# ---- connector specifics ----------------------------------------------------------------------

def test_wrong_secret_is_authentication_failed_without_the_secret(
        served: ServedApp, emulator: GraphEmulator, build: Callable[..., EntraConnector]) -> None:
    wrong = "not-the-Secret-" + uuid.uuid4().hex
    conn = build(secret=wrong)
    with pytest.raises(AuthenticationFailed) as raised:
        conn.test_connection()
    assert "invalid_client" in str(raised.value)
    assert wrong not in str(raised.value) and wrong not in repr(conn)
    assert raised.value.transient is False


def test_unknown_tenant_is_authentication_failed(served: ServedApp, emulator: GraphEmulator,
                                                  build: Callable[..., EntraConnector]) -> None:
    conn = build(authority=f"{served.url}/other-tenant")
    with pytest.raises(AuthenticationFailed):
        conn.test_connection()


def test_emulator_down_is_target_unavailable_then_recovers(
        served: ServedApp, emulator: GraphEmulator, build: Callable[..., EntraConnector]) -> None:
    conn = build()
    conn.test_connection()
    conn.close()  # no idle connection left for the server to wait for while it stops
    served.stop()
    with pytest.raises(TargetUnavailable) as raised:
        conn.create_account(spec("down"))
    assert raised.value.transient is True
    served.start()
    ref = conn.create_account(spec("down"))
    conn.close()
    assert emulator.users[ref.native_id]["userPrincipalName"] == f"down@{DOMAIN}"


def test_authority_down_before_first_token_is_target_unavailable(
        served: ServedApp, emulator: GraphEmulator, build: Callable[..., EntraConnector]) -> None:
    conn = build()
    served.stop()
    with pytest.raises(TargetUnavailable):
        conn.test_connection()
    served.start()
    conn.test_connection()


def test_server_certificate_is_verified(served: ServedApp, emulator: GraphEmulator,
                                        build: Callable[..., EntraConnector]) -> None:
    conn = build(ca_file=None)
    with pytest.raises(TargetUnavailable):
        conn.test_connection()
    assert emulator.requests == []  # the TLS handshake failed: nothing was sent


def test_constructor_does_no_io(emulator: GraphEmulator) -> None:
    EntraConnector(settings={"authority": "https://127.0.0.1:9/t", "client_id": "c"},
                   credentials={"client_secret": "s"}).close()
    assert emulator.requests == []


@pytest.mark.parametrize(("settings", "credentials"), [
    ({"client_id": "c"}, {"client_secret": "s"}),
    ({"authority": "http://insecure/t", "client_id": "c"}, {"client_secret": "s"}),
    ({"authority": "https://a/t"}, {"client_secret": "s"}),
])
def test_incomplete_settings_are_data_errors(settings: dict[str, Any],
                                             credentials: dict[str, Any]) -> None:
    with pytest.raises(DataError):
        EntraConnector(settings=settings, credentials=credentials)


def test_missing_secret_is_authentication_failed() -> None:
    with pytest.raises(AuthenticationFailed):
        EntraConnector(settings={"authority": "https://a/t", "client_id": "c"}, credentials={})


def test_throttling_is_raised_with_retry_after_not_slept(
        connector: EntraConnector, emulator: GraphEmulator) -> None:
    ref = connector.create_account(spec("slow"))
    emulator.throttle(1, retry_after=17)
    with pytest.raises(Throttled) as raised:
        connector.grant(ref, group(emulator, "finance"))
    assert raised.value.retry_after == 17
    assert raised.value.category == "throttled"
    connector.grant(ref, group(emulator, "finance"))
    assert emulator.members[emulator.finance] == [ref.native_id]


def test_service_unavailable_is_transient_with_retry_after(
        connector: EntraConnector, emulator: GraphEmulator) -> None:
    emulator.unavailable(1, retry_after=30)
    with pytest.raises(TargetUnavailable) as raised:
        connector.create_account(spec("busy"))
    assert raised.value.retry_after == 30
    assert emulator.users == {}


def test_missing_permission_is_policy_violation(connector: EntraConnector,
                                                emulator: GraphEmulator) -> None:
    ref = connector.create_account(spec("denied"))
    emulator.permissions.discard("GroupMember.ReadWrite.All")
    with pytest.raises(PolicyViolation) as raised:
        connector.grant(ref, group(emulator, "finance"))
    assert "Authorization_RequestDenied" in str(raised.value)


def test_bad_attribute_is_data_error(connector: EntraConnector) -> None:
    ref = connector.create_account(spec("typo"))
    with pytest.raises(DataError) as raised:
        connector.update_account(ref, {"shoeSize": "44"})
    assert "shoeSize" in str(raised.value)


def test_expired_token_is_renewed_once(connector: EntraConnector,
                                       emulator: GraphEmulator) -> None:
    connector.test_connection()
    emulator.expire_tokens()
    connector.test_connection()
    token_calls = [p for m, p in emulator.requests if p.endswith("/oauth2/v2.0/token")]
    assert len(token_calls) == 2


def test_create_sets_forced_password_change_and_maps_directory_names(
        served: ServedApp, emulator: GraphEmulator, build: Callable[..., EntraConnector]) -> None:
    conn = build(upn_domain=DOMAIN)
    ref = conn.create_account(AccountSpec("jsmith", {"cn": "Jane Smith", "sn": "Smith",
                                                     "employeeNumber": "E7"}, enabled=False))
    assert ref.username == f"jsmith@{DOMAIN}"
    user = emulator.users[ref.native_id]
    assert (user["displayName"], user["surname"], user["employeeId"], user["accountEnabled"]) \
        == ("Jane Smith", "Smith", "E7", False)
    assert emulator.password_profiles[ref.native_id]["forceChangePasswordNextSignIn"] is True


def test_initial_password_never_appears_in_logs_errors_or_results(
        served: ServedApp, emulator: GraphEmulator, build: Callable[..., EntraConnector],
        caplog: pytest.LogCaptureFixture) -> None:
    conn = build()
    with caplog.at_level(logging.DEBUG):
        ref = conn.create_account(spec("secretive"))
        with pytest.raises(DataError) as raised:  # refused: the domain is not verified
            conn.create_account(AccountSpec("x@unverified.example", {}))
        infos = conn.list_accounts().items
    conn.close()
    assert len(emulator.received_passwords) == 2
    exposed = caplog.text + str(raised.value) + repr(ref) + repr(infos) + repr(conn)
    for password in emulator.received_passwords:
        assert password not in exposed
    assert emulator.client_secret not in caplog.text
    assert len(set(emulator.received_passwords)) == 2  # random, not a fixed default


def test_accounts_page_through_next_link(connector: EntraConnector,
                                         emulator: GraphEmulator) -> None:
    for n in range(5):
        emulator.add_user(f"p{n}@{DOMAIN}")
    pages = []
    cursor = None
    while True:
        page = connector.list_accounts(cursor=cursor, page_size=2)
        pages.append(len(page.items))
        if page.next_cursor is None:
            break
        assert page.next_cursor.startswith(f"{emulator_url(connector)}/users?")
        cursor = page.next_cursor
    assert pages == [2, 2, 1]


def emulator_url(connector: EntraConnector) -> str:
    return connector._settings.graph_url


def test_foreign_cursor_is_refused(connector: EntraConnector) -> None:
    with pytest.raises(DataError):
        connector.list_accounts(cursor="https://evil.example/v1.0/users?$skiptoken=x")


def test_entitlements_list_groups_and_app_roles_with_members(
        connector: EntraConnector, emulator: GraphEmulator) -> None:
    ref = connector.create_account(spec("holder"))
    connector.grant(ref, group(emulator, "sales"))
    connector.grant(ref, app_role(emulator, "Payroll.Admin"))
    listed = {e.native_id: (e.kind, e.members) for e in all_entitlements(connector, page_size=1)}
    assert listed == {
        group(emulator, "finance"): ("group", ()),
        group(emulator, "sales"): ("group", (ref.native_id,)),
        app_role(emulator, "Payroll.Clerk"): ("app-role", ()),
        app_role(emulator, "Payroll.Admin"): ("app-role", (ref.native_id,)),
    }


def test_app_role_grant_and_revoke_are_idempotent(connector: EntraConnector,
                                                  emulator: GraphEmulator) -> None:
    ref = connector.create_account(spec("roles"))
    clerk = app_role(emulator, "Payroll.Clerk")
    connector.grant(ref, clerk)
    connector.grant(ref, clerk)
    assert len(emulator.assignments) == 1
    connector.revoke(ref, clerk)
    connector.revoke(ref, clerk)
    assert emulator.assignments == {}


def test_malformed_entitlement_is_data_error(connector: EntraConnector) -> None:
    ref = connector.create_account(spec("malformed"))
    for bad in ("finance", "group:../users", f"app-role:{uuid.uuid4()}"):
        with pytest.raises(DataError):
            connector.grant(ref, bad)


def test_last_sign_in_from_sign_in_activity(connector: EntraConnector,
                                            emulator: GraphEmulator) -> None:
    ref = connector.create_account(spec("signer"))
    assert connector.last_sign_in(ref) is None
    emulator.record_sign_in(ref.native_id, datetime(2026, 1, 10, 8, 30, tzinfo=UTC))
    assert connector.last_sign_in(ref) == datetime(2026, 1, 10, 8, 30, tzinfo=UTC)
    emulator.permissions.discard("AuditLog.Read.All")
    with pytest.raises(PolicyViolation):
        connector.last_sign_in(ref)


# ---- batches ----------------------------------------------------------------------------------

def people(connector: EntraConnector, count: int) -> list[AccountRef]:
    return [connector.create_account(spec(f"batch{n}", f"B{n}")) for n in range(count)]


def test_grant_many_uses_batches_of_twenty(connector: EntraConnector,
                                           emulator: GraphEmulator) -> None:
    refs = people(connector, 25)
    results = connector.grant_many([(r, group(emulator, "finance")) for r in refs])
    assert [r.ok for r in results] == [True] * 25
    assert emulator.batch_sizes == [20, 5]
    assert sorted(emulator.members[emulator.finance]) == \
        sorted(r.native_id for r in refs)


def test_grant_many_reports_each_item(connector: EntraConnector,
                                      emulator: GraphEmulator) -> None:
    a, b, c = people(connector, 3)
    connector.grant(a, group(emulator, "finance"))
    emulator.throttle_subrequests(1, retry_after=12, match=f"/groups/{emulator.sales}")
    results = connector.grant_many([
        (a, group(emulator, "finance")),             # already a member: success
        (b, group(emulator, "sales")),               # throttled on its own
        (c, f"group:{uuid.uuid4()}"),                # no such group
        (c, app_role(emulator, "Payroll.Clerk")),    # fine
        (c, "nonsense"),                             # never sent
    ])
    outcomes = [(type(r.error).__name__ if r.error else "ok") for r in results]
    assert outcomes == ["ok", "Throttled", "DataError", "ok", "DataError"]
    assert results[1].error is not None and results[1].error.retry_after == 12
    assert emulator.members[emulator.sales] == []
    again = connector.grant_many([(b, group(emulator, "sales"))])
    assert again[0].ok and emulator.members[emulator.sales] == [b.native_id]


def test_dropped_batch_fails_every_item_and_a_rerun_completes(
        connector: EntraConnector, emulator: GraphEmulator) -> None:
    refs = people(connector, 4)
    items = [(r, group(emulator, "finance")) for r in refs]
    emulator.drop_next_batch(after=2)
    results = connector.grant_many(items)
    assert all(isinstance(r.error, TargetUnavailable) for r in results)
    assert len(emulator.members[emulator.finance]) == 2
    assert all(r.ok for r in connector.grant_many(items))
    assert sorted(emulator.members[emulator.finance]) == \
        sorted(r.native_id for r in refs)


def test_throttled_batch_call_throttles_every_item(connector: EntraConnector,
                                                   emulator: GraphEmulator) -> None:
    refs = people(connector, 2)
    emulator.throttle(1, retry_after=4)
    results = connector.grant_many([(r, group(emulator, "finance")) for r in refs])
    assert [(type(r.error), r.error.retry_after if r.error else None) for r in results] == \
        [(Throttled, 4), (Throttled, 4)]


def test_revoke_many_removes_groups_and_app_roles(connector: EntraConnector,
                                                  emulator: GraphEmulator) -> None:
    a, b = people(connector, 2)
    clerk = app_role(emulator, "Payroll.Clerk")
    connector.grant_many([(a, group(emulator, "finance")), (a, clerk), (b, clerk)])
    results = connector.revoke_many([(a, group(emulator, "finance")), (a, clerk), (b, clerk),
                                     (b, group(emulator, "sales"))])  # not a member: success
    assert [r.ok for r in results] == [True, True, True, True]
    assert emulator.members[emulator.finance] == []
    assert emulator.assignments == {}


# ---- a real tenant, when one is configured ----------------------------------------------------

REAL = {name: os.environ.get(f"IDGOV_TEST_ENTRA_{name}")
        for name in ("TENANT_ID", "CLIENT_ID", "CLIENT_SECRET", "UPN_DOMAIN", "GROUP_IDS")}
real_tenant = pytest.mark.skipif(
    not (REAL["TENANT_ID"] and REAL["CLIENT_ID"] and REAL["CLIENT_SECRET"]),
    reason="no Entra tenant configured (IDGOV_TEST_ENTRA_TENANT_ID, _CLIENT_ID, "
           "_CLIENT_SECRET)")


def real_connector() -> EntraConnector:
    return EntraConnector(settings={"tenant_id": REAL["TENANT_ID"],
                                    "client_id": REAL["CLIENT_ID"],
                                    "upn_domain": REAL["UPN_DOMAIN"]},
                          credentials={"client_secret": REAL["CLIENT_SECRET"]})


@real_tenant
def test_real_tenant_connects_and_lists() -> None:
    conn = real_connector()
    try:
        conn.test_connection()
        assert conn.list_accounts(page_size=5).items is not None
        assert conn.list_entitlements(page_size=2).items is not None
    finally:
        conn.close()


@real_tenant
@pytest.mark.skipif(not (REAL["UPN_DOMAIN"] and REAL["GROUP_IDS"]),
                    reason="the writing tests need IDGOV_TEST_ENTRA_UPN_DOMAIN and "
                           "IDGOV_TEST_ENTRA_GROUP_IDS (two group ids, comma-separated)")
class TestEntraRealTenantContract(ConnectorContract):
    """The contract in a real tenant: it creates users named idgov-contract-<run>-<n> and
    deletes them afterwards."""

    run = uuid.uuid4().hex[:8]

    @pytest.fixture
    def connector(self) -> Iterator[EntraConnector]:
        conn = real_connector()
        yield conn
        for account in all_accounts(conn):
            if account.username.startswith(f"idgov-contract-{self.run}-"):
                conn.delete_account(AccountRef(account.native_id, account.username))
        conn.close()

    @pytest.fixture
    def target_entitlements(self) -> list[str]:
        return [f"group:{g.strip()}" for g in str(REAL["GROUP_IDS"]).split(",")]

    def account_spec(self, n: int) -> AccountSpec:
        name = f"idgov-contract-{self.run}-{n}"
        return AccountSpec(username=f"{name}@{REAL['UPN_DOMAIN']}",
                           attributes={"displayName": name, "employeeId": f"C{n:05d}"})

    def clashing_spec(self, spec: AccountSpec) -> AccountSpec:
        return AccountSpec(username=spec.username, attributes={"employeeId": "X99999"})

    def changed_attributes(self) -> dict[str, Any]:
        return {"surname": "Renamed"}

    def unknown_entitlement(self, target_entitlements: Any) -> str:
        return f"group:{uuid.uuid4()}"
