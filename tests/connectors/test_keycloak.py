"""The Keycloak connector: the connector contract against the emulator (served over real
HTTP, python-keycloak unchanged), Keycloak-specific behaviour and faults, and the contract
against a real Keycloak when ``IDGOV_TEST_KEYCLOAK_URL`` (with ``_REALM``, ``_CLIENT_ID``,
``_CLIENT_SECRET``) is set."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from keycloak import KeycloakAdmin, KeycloakOpenIDConnection
from starlette.applications import Starlette
from starlette.routing import Mount

from connectors import registry
from connectors.base import AccountRef, AccountSpec
from connectors.errors import (
    AUTHENTICATION,
    POLICY_VIOLATION,
    SYSTEM_UNAVAILABLE,
    THROTTLED,
    TIMEOUT,
    AuthenticationFailed,
    ConnectorError,
    DataError,
    PolicyViolation,
    TargetTimeout,
    TargetUnavailable,
    Throttled,
)
from connectors.keycloak import KeycloakConnector
from tests.connectors.contract import ConnectorContract, all_accounts, all_entitlements
from tests.emulators.keycloak import KeycloakEmulator
from tests.emulators.serve import ServedApp, serve
from tests.emulators.tls import make_pki

SECRET = "provisioner-secret-4c1d"


def settings_for(url: str, **extra: Any) -> dict[str, Any]:
    return {"server_url": url + "/", "realm": "idgov", "client_id": "idgov-provisioner",
            "verify": True, "timeout_seconds": 10, "clients": ["portal"], **extra}


@pytest.fixture
def emulator() -> KeycloakEmulator:
    emu = KeycloakEmulator(realm="idgov", client_id="idgov-provisioner", client_secret=SECRET)
    emu.add_group("engineering")
    emu.add_group("finance")
    emu.add_realm_role("auditor")
    emu.add_client("portal")
    emu.add_client_role("portal", "viewer")
    emu.add_client_role("portal", "editor")
    return emu


@pytest.fixture
def served(emulator: KeycloakEmulator) -> Iterator[ServedApp]:
    with serve(emulator.app) as running:
        yield running
        emulator.release()  # a test that held requests must not block the shutdown


def make_connector(served: ServedApp, secret: str = SECRET, **extra: Any) -> KeycloakConnector:
    return KeycloakConnector(settings=settings_for(served.url, **extra),
                             credentials={"client_secret": secret})


@pytest.fixture
def kc(served: ServedApp) -> Iterator[KeycloakConnector]:
    connector = make_connector(served)
    yield connector
    connector.close()


def group_id(emulator: KeycloakEmulator, name: str) -> str:
    realm = emulator.realms["idgov"]
    return next(g.id for g in realm.groups.values() if g.name == name)


class KeycloakVocabulary:
    """The contract's hooks in Keycloak's vocabulary (user fields and user attributes)."""

    prefix = "contract"

    def account_spec(self, n: int) -> AccountSpec:
        return AccountSpec(username=f"{self.prefix}{n}", attributes={
            "firstName": "Contract", "lastName": f"Person{n}",
            "email": f"{self.prefix}{n}@example.org", "employeeNumber": f"C{n:05d}"})

    def clashing_spec(self, spec: AccountSpec) -> AccountSpec:
        attributes = dict(spec.attributes)
        attributes["email"] = f"someone.else.{spec.username}@example.org"
        attributes["employeeNumber"] = "X99999"
        return AccountSpec(username=spec.username, attributes=attributes)

    def changed_attributes(self) -> Mapping[str, Any]:
        return {"lastName": "Renamed", "department": "Audit"}

    def unknown_entitlement(self, target_entitlements: list[str]) -> str:
        return f"group:{uuid.uuid4()}"


class TestKeycloakContract(KeycloakVocabulary, ConnectorContract):
    """The connector contract against the emulator."""

    @pytest.fixture
    def connector(self, kc: KeycloakConnector) -> KeycloakConnector:
        return kc

    @pytest.fixture
    def target_entitlements(self, emulator: KeycloakEmulator) -> list[str]:
        return [f"group:{group_id(emulator, 'engineering')}", "realm-role:auditor",
                "client-role:portal:viewer"]


# ---- Keycloak specifics --------------------------------------------------------------------


def test_registry_builds_the_keycloak_connector(served: ServedApp) -> None:
    connector = registry.build("keycloak", settings_for(served.url),
                               {"client_secret": SECRET})
    try:
        assert isinstance(connector, KeycloakConnector)
        assert connector.kind == "keycloak"
        connector.test_connection()
    finally:
        connector.close()


def test_create_maps_fields_and_attributes(kc: KeycloakConnector,
                                           emulator: KeycloakEmulator) -> None:
    ref = kc.create_account(AccountSpec(username="JSmith", attributes={
        "firstName": "Jane", "lastName": "Smith", "email": "Jane.Smith@Example.org",
        "employeeNumber": "E001", "department": "Finance", "emailVerified": True}))
    assert ref.username == "jsmith"
    user = emulator.user(ref.native_id)
    assert user is not None
    assert (user.username, user.first_name, user.last_name, user.email, user.email_verified,
            user.enabled) == ("jsmith", "Jane", "Smith", "jane.smith@example.org", True, True)
    assert user.attributes == {"employeeNumber": ["E001"], "department": ["Finance"]}
    [info] = [a for a in all_accounts(kc) if a.native_id == ref.native_id]
    assert info.username == "jsmith"
    assert info.attributes["employeeNumber"] == "E001"
    assert info.attributes["lastName"] == "Smith"


def test_create_disabled_account(kc: KeycloakConnector, emulator: KeycloakEmulator) -> None:
    ref = kc.create_account(AccountSpec(username="later", enabled=False))
    user = emulator.user(ref.native_id)
    assert user is not None and user.enabled is False


def test_required_actions_from_settings(served: ServedApp, emulator: KeycloakEmulator) -> None:
    connector = make_connector(served, required_actions=["UPDATE_PASSWORD", "VERIFY_EMAIL"])
    try:
        ref = connector.create_account(AccountSpec(username="newcomer"))
    finally:
        connector.close()
    user = emulator.user(ref.native_id)
    assert user is not None
    assert user.required_actions == ["UPDATE_PASSWORD", "VERIFY_EMAIL"]
    assert user.password is None  # no password is set or known by idgov


def test_create_returns_existing_same_person(kc: KeycloakConnector,
                                             emulator: KeycloakEmulator) -> None:
    existing = emulator.add_user("ada", email="ada@example.org",
                                 attributes={"employeeNumber": ["E7"]})
    ref = kc.create_account(AccountSpec(username="Ada", attributes={
        "email": "ADA@example.org", "employeeNumber": "E7", "firstName": "Ada"}))
    assert ref == AccountRef(native_id=existing, username="ada")
    assert len(emulator.admin_calls("POST")) == 0


def test_email_taken_by_another_user_is_data_error(kc: KeycloakConnector,
                                                   emulator: KeycloakEmulator) -> None:
    emulator.add_user("someone", email="shared@example.org")
    with pytest.raises(DataError, match="User exists with same email"):
        kc.create_account(AccountSpec(username="other", attributes={
            "email": "shared@example.org"}))
    assert emulator.user_by_username("other") is None


def test_update_keeps_other_attributes_and_removes_none(kc: KeycloakConnector,
                                                        emulator: KeycloakEmulator) -> None:
    ref = kc.create_account(AccountSpec(username="upd", attributes={
        "firstName": "U", "email": "upd@example.org", "employeeNumber": "E9",
        "department": "Sales", "costCentre": "42"}))
    kc.update_account(ref, {"department": "Audit", "costCentre": None, "lastName": "Dated"})
    user = emulator.user(ref.native_id)
    assert user is not None
    assert user.attributes == {"employeeNumber": ["E9"], "department": ["Audit"]}
    assert (user.first_name, user.last_name, user.email) == ("U", "Dated", "upd@example.org")


def test_rename_is_refused(kc: KeycloakConnector) -> None:
    ref = kc.create_account(AccountSpec(username="fixed"))
    with pytest.raises(DataError, match="not renamed"):
        kc.update_account(ref, {"username": "other"})


def test_disable_keeps_attributes(kc: KeycloakConnector, emulator: KeycloakEmulator) -> None:
    ref = kc.create_account(AccountSpec(username="dis", attributes={"department": "Ops"}))
    kc.disable_account(ref)
    user = emulator.user(ref.native_id)
    assert user is not None and user.enabled is False
    assert user.attributes == {"department": ["Ops"]}
    puts = len(emulator.admin_calls("PUT"))
    kc.disable_account(ref)  # already disabled: nothing is written
    assert len(emulator.admin_calls("PUT")) == puts


def test_groups_realm_roles_and_client_roles(kc: KeycloakConnector,
                                             emulator: KeycloakEmulator) -> None:
    ref = kc.create_account(AccountSpec(username="grantee"))
    engineering = group_id(emulator, "engineering")
    for entitlement in (f"group:{engineering}", "realm-role:auditor",
                        "client-role:portal:editor"):
        kc.grant(ref, entitlement)
        kc.grant(ref, entitlement)
    assert emulator.group_members(engineering) == {"grantee"}
    assert emulator.realm_roles_of(ref.native_id) == {"auditor"}
    assert emulator.client_roles_of(ref.native_id, "portal") == {"editor"}

    listed = {e.native_id: (e.kind, e.name, e.members) for e in all_entitlements(kc)}
    assert listed == {
        f"group:{engineering}": ("group", "/engineering", (ref.native_id,)),
        f"group:{group_id(emulator, 'finance')}": ("group", "/finance", ()),
        "realm-role:auditor": ("realm-role", "auditor", (ref.native_id,)),
        "client-role:portal:editor": ("client-role", "portal:editor", (ref.native_id,)),
        "client-role:portal:viewer": ("client-role", "portal:viewer", ()),
    }

    for entitlement in ("realm-role:auditor", "client-role:portal:editor"):
        kc.revoke(ref, entitlement)
        kc.revoke(ref, entitlement)
    assert emulator.realm_roles_of(ref.native_id) == set()
    assert emulator.client_roles_of(ref.native_id, "portal") == set()
    assert emulator.group_members(engineering) == {"grantee"}


def test_client_id_with_colons(served: ServedApp, emulator: KeycloakEmulator) -> None:
    emulator.add_client("https://sp.example.org/saml")
    emulator.add_client_role("https://sp.example.org/saml", "member")
    connector = make_connector(served)
    try:
        ref = connector.create_account(AccountSpec(username="saml"))
        connector.grant(ref, "client-role:https://sp.example.org/saml:member")
    finally:
        connector.close()
    assert emulator.client_roles_of(ref.native_id, "https://sp.example.org/saml") == {"member"}


@pytest.mark.parametrize("entitlement", [
    "realm-role:no-such-role", "client-role:portal:no-such-role",
    "client-role:no-such-client:viewer", "group:00000000-0000-0000-0000-000000000000",
    "team:engineering", "client-role:portal", "group:",
])
def test_grant_of_unknown_or_malformed_entitlement_is_data_error(
        kc: KeycloakConnector, entitlement: str) -> None:
    ref = kc.create_account(AccountSpec(username="nobody"))
    with pytest.raises(DataError):
        kc.grant(ref, entitlement)


def test_revoke_of_missing_role_or_account_succeeds(kc: KeycloakConnector,
                                                    emulator: KeycloakEmulator) -> None:
    ref = kc.create_account(AccountSpec(username="gone"))
    kc.revoke(ref, "realm-role:no-such-role")
    kc.revoke(ref, "client-role:no-such-client:viewer")
    kc.delete_account(ref)
    kc.revoke(ref, f"group:{group_id(emulator, 'engineering')}")
    kc.revoke(ref, "realm-role:auditor")


def test_grant_to_missing_account_is_data_error(kc: KeycloakConnector) -> None:
    ghost = AccountRef(native_id=str(uuid.uuid4()), username="ghost")
    with pytest.raises(DataError):
        kc.grant(ghost, "realm-role:auditor")
    with pytest.raises(DataError):
        kc.disable_account(ghost)


def test_keycloak_default_realm_roles_are_not_listed(kc: KeycloakConnector) -> None:
    names = {e.native_id for e in all_entitlements(kc)}
    assert "realm-role:offline_access" not in names
    assert "realm-role:default-roles-idgov" not in names


def test_listing_pages_follow_first_and_max(kc: KeycloakConnector,
                                            emulator: KeycloakEmulator) -> None:
    for n in range(5):
        emulator.add_user(f"user{n}")
    page = kc.list_accounts(page_size=2)
    assert [a.username for a in page.items] == ["user0", "user1"]
    assert page.next_cursor == "2"
    page = kc.list_accounts(cursor="4", page_size=2)
    assert [a.username for a in page.items] == ["user4"]
    assert page.next_cursor is None
    with pytest.raises(DataError):
        kc.list_accounts(cursor="not-a-number")
    with pytest.raises(DataError):
        kc.list_entitlements(cursor="z:0")


def test_server_url_with_a_path_prefix(emulator: KeycloakEmulator) -> None:
    """Older Keycloak serves under /auth; the connector adds the trailing "/" urljoin needs."""
    app = Starlette(routes=[Mount("/auth", app=emulator.app)])
    with serve(app) as running:
        connector = KeycloakConnector(
            settings={"server_url": running.url + "/auth", "realm": "idgov",
                      "client_id": "idgov-provisioner"},
            credentials={"client_secret": SECRET})
        try:
            connector.test_connection()
            ref = connector.create_account(AccountSpec(username="prefixed"))
        finally:
            connector.close()
    assert emulator.user(ref.native_id) is not None


def test_password_grant_of_a_master_realm_admin(served: ServedApp,
                                                emulator: KeycloakEmulator) -> None:
    emulator.add_user("root", realm="master", password="root-pass-1", admin=True)
    connector = KeycloakConnector(
        settings={"server_url": served.url, "realm": "idgov", "client_id": "admin-cli",
                  "grant_type": "password", "username": "root", "user_realm": "master"},
        credentials={"password": "root-pass-1"})
    try:
        ref = connector.create_account(AccountSpec(username="via-admin"))
    finally:
        connector.close()
    assert emulator.user(ref.native_id) is not None


def test_expired_token_is_renewed(kc: KeycloakConnector, emulator: KeycloakEmulator) -> None:
    kc.test_connection()
    emulator.expire_tokens()
    ref = kc.create_account(AccountSpec(username="after-expiry"))
    assert emulator.user(ref.native_id) is not None
    assert emulator.user_by_username("after-expiry") is not None
    tokens = [c for c in emulator.calls if c[1].endswith("/openid-connect/token")]
    assert len(tokens) == 2


# ---- faults ---------------------------------------------------------------------------------


def assert_no_secret(error: ConnectorError, *secrets: str) -> None:
    text = f"{error} {error!r} {error.message}"
    for secret in secrets:
        assert secret not in text


def test_wrong_secret_is_authentication_failure(served: ServedApp) -> None:
    connector = make_connector(served, secret="wrong-secret-9z")
    try:
        with pytest.raises(AuthenticationFailed) as raised:
            connector.test_connection()
        assert raised.value.category == AUTHENTICATION and raised.value.transient is False
        assert_no_secret(raised.value, "wrong-secret-9z", SECRET)
        with pytest.raises(AuthenticationFailed):
            connector.create_account(AccountSpec(username="never"))
    finally:
        connector.close()


def test_secret_rotated_under_a_running_connector(kc: KeycloakConnector,
                                                  emulator: KeycloakEmulator) -> None:
    kc.test_connection()
    emulator.set_client_secret("idgov-provisioner", "rotated-secret")
    emulator.expire_tokens()
    with pytest.raises(AuthenticationFailed) as raised:
        kc.create_account(AccountSpec(username="rotated"))
    assert_no_secret(raised.value, SECRET, "rotated-secret")
    assert emulator.user_by_username("rotated") is None


def test_missing_admin_rights_is_policy_violation(kc: KeycloakConnector,
                                                  emulator: KeycloakEmulator) -> None:
    emulator.set_client_admin("idgov-provisioner", False)
    with pytest.raises(PolicyViolation) as raised:
        kc.create_account(AccountSpec(username="forbidden"))
    assert raised.value.category == POLICY_VIOLATION


def test_emulator_503_is_target_unavailable(kc: KeycloakConnector,
                                            emulator: KeycloakEmulator) -> None:
    kc.test_connection()
    emulator.down = True
    with pytest.raises(TargetUnavailable) as raised:
        kc.create_account(AccountSpec(username="while-down"))
    assert raised.value.category == SYSTEM_UNAVAILABLE and raised.value.transient is True
    emulator.down = False
    ref = kc.create_account(AccountSpec(username="while-down"))
    assert emulator.user(ref.native_id) is not None


def test_stopped_server_is_target_unavailable(kc: KeycloakConnector, served: ServedApp,
                                              emulator: KeycloakEmulator) -> None:
    kc.test_connection()
    served.stop()
    with pytest.raises(TargetUnavailable) as raised:
        kc.grant(AccountRef(native_id=str(uuid.uuid4()), username="x"), "realm-role:auditor")
    assert "cannot reach Keycloak" in str(raised.value)
    served.start()  # back on the same port: the same connector carries on
    ref = kc.create_account(AccountSpec(username="after-restart"))
    assert emulator.user(ref.native_id) is not None


def test_unreachable_at_first_contact_is_target_unavailable(served: ServedApp) -> None:
    url = served.url
    served.stop()
    connector = KeycloakConnector(settings=settings_for(url),
                                  credentials={"client_secret": SECRET})
    try:
        with pytest.raises(TargetUnavailable):
            connector.test_connection()
    finally:
        connector.close()


def test_throttled_with_retry_after(kc: KeycloakConnector, emulator: KeycloakEmulator) -> None:
    kc.test_connection()
    emulator.throttle(retry_after=7)
    with pytest.raises(Throttled) as raised:
        kc.create_account(AccountSpec(username="throttled"))
    assert raised.value.category == THROTTLED
    assert raised.value.retry_after == 7.0
    ref = kc.create_account(AccountSpec(username="throttled"))
    assert emulator.user(ref.native_id) is not None


def test_throttled_token_endpoint(kc: KeycloakConnector, emulator: KeycloakEmulator) -> None:
    emulator.throttle(retry_after=3)
    with pytest.raises(Throttled) as raised:
        kc.test_connection()
    assert raised.value.retry_after == 3.0


@pytest.mark.parametrize(("status", "body", "expected"), [
    (500, {"error": "unknown_error"}, TargetUnavailable),
    (502, "Bad Gateway", TargetUnavailable),
    (400, {"errorMessage": "error-invalid-value"}, DataError),
    (403, {"error": "HTTP 403 Forbidden"}, PolicyViolation),
])
def test_statuses_are_classified(kc: KeycloakConnector, emulator: KeycloakEmulator,
                                 status: int, body: Any, expected: type[ConnectorError]) -> None:
    kc.test_connection()
    emulator.fail_next(status, body)
    with pytest.raises(expected) as raised:
        kc.list_accounts()
    assert str(status) in str(raised.value)


def test_held_request_is_a_timeout(served: ServedApp, emulator: KeycloakEmulator) -> None:
    connector = make_connector(served, timeout_seconds=0.3, max_retries=0)
    try:
        connector.test_connection()
        emulator.hold()
        with pytest.raises(TargetTimeout) as raised:
            connector.list_accounts()
        assert raised.value.category == TIMEOUT and raised.value.transient is True
    finally:
        emulator.release()
        connector.close()


def test_https_with_a_ca_path_despite_requests_ca_bundle(tmp_path: Path,
                                                         emulator: KeycloakEmulator) -> None:
    """An explicit CA file wins over REQUESTS_CA_BUNDLE (set on these machines); without it,
    the emulator's certificate is refused (the environment's bundle does not trust it)."""
    pki = make_pki(tmp_path / "pki")
    with serve(emulator.app, ssl_keyfile=str(pki.key_file),
               ssl_certfile=str(pki.cert_file)) as running:
        assert running.url.startswith("https://")
        trusted = make_connector(running, verify=str(pki.ca_file))
        untrusted = make_connector(running)
        try:
            trusted.test_connection()
            with pytest.raises(TargetUnavailable):
                untrusted.test_connection()
        finally:
            trusted.close()
            untrusted.close()


def test_missing_settings_are_data_errors() -> None:
    with pytest.raises(DataError, match="server_url"):
        KeycloakConnector(settings={"realm": "r", "client_id": "c"},
                          credentials={"client_secret": "x"})


def test_repr_holds_no_secret(kc: KeycloakConnector) -> None:
    assert SECRET not in repr(kc)


# ---- a real Keycloak (opt-in) ---------------------------------------------------------------

REAL = {name: os.environ.get(f"IDGOV_TEST_KEYCLOAK_{name}", "")
        for name in ("URL", "REALM", "CLIENT_ID", "CLIENT_SECRET")}


@pytest.mark.skipif(not REAL["URL"], reason="IDGOV_TEST_KEYCLOAK_URL is not set")
class TestRealKeycloakContract(KeycloakVocabulary, ConnectorContract):
    """The contract against a real Keycloak: the realm's client needs the realm-management
    roles manage-users, view-users, query-groups, view-realm and view-clients. The test makes
    two groups and its own users (named idgov-ct-<random>-<n>) and deletes them afterwards."""

    prefix = f"idgov-ct-{uuid.uuid4().hex[:8]}-"

    def changed_attributes(self) -> Mapping[str, Any]:
        # A realm with the user profile's unmanaged attributes off keeps only its own fields.
        return {"lastName": "Renamed"}

    @pytest.fixture
    def real_settings(self) -> dict[str, Any]:
        return {"server_url": REAL["URL"], "realm": REAL["REALM"] or "master",
                "client_id": REAL["CLIENT_ID"] or "idgov-provisioner", "verify": True,
                "timeout_seconds": 30}

    @pytest.fixture
    def real_admin(self, real_settings: dict[str, Any]) -> KeycloakAdmin:
        url = real_settings["server_url"]
        return KeycloakAdmin(connection=KeycloakOpenIDConnection(
            server_url=url if url.endswith("/") else url + "/",
            realm_name=real_settings["realm"], client_id=real_settings["client_id"],
            client_secret_key=REAL["CLIENT_SECRET"], grant_type="client_credentials"))

    @pytest.fixture
    def target_entitlements(self, real_admin: KeycloakAdmin) -> Iterator[list[str]]:
        ids = [real_admin.create_group({"name": f"{self.prefix}group{n}"}) for n in (1, 2)]
        try:
            yield [f"group:{i}" for i in ids]
        finally:
            for group in ids:
                real_admin.delete_group(str(group))

    @pytest.fixture
    def connector(self, real_settings: dict[str, Any], real_admin: KeycloakAdmin,
                  target_entitlements: list[str]) -> Iterator[KeycloakConnector]:
        connector = KeycloakConnector(settings=real_settings,
                                      credentials={"client_secret": REAL["CLIENT_SECRET"]})
        try:
            yield connector
        finally:
            connector.close()
            for user in real_admin.get_users({"search": self.prefix}):
                if str(user["username"]).startswith(self.prefix):
                    real_admin.delete_user(user["id"])
