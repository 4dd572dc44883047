"""The Entra connector against the Graph emulator over HTTPS (msal and httpx unchanged), the
emulator's own strictness from Microsoft's documented examples, and opt-in real-tenant tests."""

from __future__ import annotations

import logging
import os
import ssl
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
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
from tests.connectors.contract import ConnectorContract, all_accounts, all_entitlements
from tests.emulators.graph import GraphEmulator, serve_graph
from tests.emulators.serve import ServedApp
from tests.emulators.tls import TestPki, make_pki

DOMAIN = "contoso.example"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TestPki:
    return make_pki(tmp_path_factory.mktemp("graph-pki"))


@pytest.fixture
def emulator() -> GraphEmulator:
    emu = GraphEmulator(domains=(DOMAIN,))
    emu.finance = emu.add_group("Finance")
    emu.sales = emu.add_group("Sales")
    emu.payroll = emu.add_service_principal(
        "Payroll", {"Payroll.Clerk": "Clerk", "Payroll.Admin": "Administrator"})
    return emu


@pytest.fixture
def served(emulator: GraphEmulator, pki: TestPki) -> Iterator[ServedApp]:
    with serve_graph(emulator, pki) as served:
        yield served


def settings_for(served: ServedApp, emulator: GraphEmulator, pki: TestPki,
                 **extra: Any) -> dict[str, Any]:
    return {"authority": f"{served.url}/{emulator.tenant_id}", "client_id": emulator.client_id,
            "graph_url": f"{served.url}/v1.0", "ca_file": str(pki.ca_file),
            "app_role_resources": [emulator.payroll],
            **extra}


def make_connector(served: ServedApp, emulator: GraphEmulator, pki: TestPki, *,
                   secret: str | None = None, **extra: Any) -> EntraConnector:
    return EntraConnector(settings=settings_for(served, emulator, pki, **extra),
                          credentials={"client_secret": secret or emulator.client_secret})


@pytest.fixture
def build(served: ServedApp, emulator: GraphEmulator,
          pki: TestPki) -> Iterator[Callable[..., EntraConnector]]:
    """Connectors for this test's emulator, closed before the server stops (an idle
    keep-alive connection would hold its shutdown)."""
    built: list[EntraConnector] = []

    def make(**extra: Any) -> EntraConnector:
        built.append(make_connector(served, emulator, pki, **extra))
        return built[-1]

    yield make
    for conn in built:
        conn.close()


@pytest.fixture
def connector(build: Callable[..., EntraConnector]) -> EntraConnector:
    return build()


def group(emulator: GraphEmulator, name: str) -> str:
    return f"group:{getattr(emulator, name)}"


def app_role(emulator: GraphEmulator, value: str) -> str:
    sp = emulator.payroll
    return f"app-role:{sp}:{emulator.app_role_id(sp, value)}"


def spec(name: str, employee_id: str = "E1") -> AccountSpec:
    return AccountSpec(username=f"{name}@{DOMAIN}",
                       attributes={"displayName": name.title(), "givenName": name.title(),
                                   "surname": "Tester", "mail": f"{name}@mail.example",
                                   "employeeId": employee_id})


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


# ---- the emulator, from Graph's documented examples -------------------------------------------

@pytest.fixture
def http(pki: TestPki, served: ServedApp) -> Iterator[httpx.Client]:
    # after the server in setup, so closed before it stops (no connection left open)
    with httpx.Client(verify=ssl.create_default_context(cafile=str(pki.ca_file)),
                      trust_env=False) as client:
        yield client


def token(http: httpx.Client, served: ServedApp, emulator: GraphEmulator) -> dict[str, str]:
    answer = http.post(f"{served.url}/{emulator.tenant_id}/oauth2/v2.0/token", data={
        "grant_type": "client_credentials", "client_id": emulator.client_id,
        "client_secret": emulator.client_secret,
        "scope": "https://graph.microsoft.com/.default"})
    assert answer.status_code == 200
    assert answer.json()["token_type"] == "Bearer"
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


ADELE = {"accountEnabled": True, "displayName": "Adele Vance", "mailNickname": "AdeleV",
         "userPrincipalName": f"AdeleV@{DOMAIN}",
         "passwordProfile": {"forceChangePasswordNextSignIn": True,
                             "password": "xWwvJ]6NMw+bWH-d"}}


def test_emulator_discovery_names_the_token_endpoint(http: httpx.Client, served: ServedApp,
                                                     emulator: GraphEmulator) -> None:
    answer = http.get(f"{served.url}/{emulator.tenant_id}/v2.0/.well-known/openid-configuration")
    assert answer.status_code == 200
    assert answer.json()["token_endpoint"] == \
        f"{served.url}/{emulator.tenant_id}/oauth2/v2.0/token"
    unknown = http.get(f"{served.url}/nowhere/v2.0/.well-known/openid-configuration")
    assert unknown.status_code == 400


def test_emulator_token_with_wrong_secret_is_invalid_client(
        http: httpx.Client, served: ServedApp, emulator: GraphEmulator) -> None:
    answer = http.post(f"{served.url}/{emulator.tenant_id}/oauth2/v2.0/token", data={
        "grant_type": "client_credentials", "client_id": emulator.client_id,
        "client_secret": "wrong", "scope": "https://graph.microsoft.com/.default"})
    assert answer.status_code == 401
    assert answer.json()["error"] == "invalid_client"
    assert answer.json()["error_description"].startswith("AADSTS7000215")


def test_emulator_create_user_as_documented(http: httpx.Client, served: ServedApp,
                                            emulator: GraphEmulator) -> None:
    answer = http.post(f"{served.url}/v1.0/users", json=ADELE,
                       headers=token(http, served, emulator))
    assert answer.status_code == 201
    body = answer.json()
    assert body["@odata.context"].endswith("/v1.0/$metadata#users/$entity")
    assert set(body) == {"@odata.context", "id", "businessPhones", "displayName", "givenName",
                         "jobTitle", "mail", "mobilePhone", "officeLocation",
                         "preferredLanguage", "surname", "userPrincipalName"}
    assert (body["displayName"], body["userPrincipalName"]) == ("Adele Vance",
                                                                f"AdeleV@{DOMAIN}")
    again = http.post(f"{served.url}/v1.0/users", json=ADELE,
                      headers=token(http, served, emulator))
    assert again.status_code == 400
    assert again.json()["error"]["code"] == "Request_BadRequest"
    assert again.json()["error"]["details"][0]["code"] == "ObjectConflict"


@pytest.mark.parametrize("missing", ["accountEnabled", "displayName", "mailNickname",
                                     "userPrincipalName", "passwordProfile"])
def test_emulator_create_user_requires_each_documented_property(
        http: httpx.Client, served: ServedApp, emulator: GraphEmulator, missing: str) -> None:
    body = {k: v for k, v in ADELE.items() if k != missing}
    answer = http.post(f"{served.url}/v1.0/users", json=body,
                       headers=token(http, served, emulator))
    assert answer.status_code == 400
    assert answer.json()["error"] == {**answer.json()["error"], "code": "Request_BadRequest"}
    assert f"'{missing}'" in answer.json()["error"]["message"]


@pytest.mark.parametrize(("change", "fragment"), [
    ({"userPrincipalName": "AdeleV@elsewhere.example"}, "verified domain"),
    ({"passwordProfile": {"password": "short"}}, "complexity"),
    ({"favouriteColour": "blue"}, "does not exist as a declared property"),
    ({"accountEnabled": "yes"}, "'accountEnabled'"),
])
def test_emulator_refuses_what_graph_refuses_on_create(
        http: httpx.Client, served: ServedApp, emulator: GraphEmulator,
        change: dict[str, Any], fragment: str) -> None:
    answer = http.post(f"{served.url}/v1.0/users", json={**ADELE, **change},
                       headers=token(http, served, emulator))
    assert answer.status_code == 400
    assert fragment in answer.json()["error"]["message"]


def test_emulator_requires_a_valid_bearer_token(http: httpx.Client, served: ServedApp,
                                                emulator: GraphEmulator) -> None:
    none = http.get(f"{served.url}/v1.0/users")
    assert (none.status_code, none.json()["error"]["code"]) == (401,
                                                                "InvalidAuthenticationToken")
    wrong = http.get(f"{served.url}/v1.0/users", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    headers = token(http, served, emulator)
    emulator.expire_tokens()
    expired = http.get(f"{served.url}/v1.0/users", headers=headers)
    assert expired.status_code == 401
    assert "expired" in expired.json()["error"]["message"]


def test_emulator_pages_users_with_next_link(http: httpx.Client, served: ServedApp,
                                             emulator: GraphEmulator) -> None:
    for n in range(5):
        emulator.add_user(f"u{n}@{DOMAIN}")
    headers = token(http, served, emulator)
    seen, url = [], f"{served.url}/v1.0/users?$top=2&$select=id,accountEnabled"
    while url:
        body = http.get(url, headers=headers).json()
        assert all(set(u) == {"id", "accountEnabled"} for u in body["value"])
        seen.extend(u["id"] for u in body["value"])
        url = body.get("@odata.nextLink")
    assert sorted(seen) == sorted(emulator.users)
    default = http.get(f"{served.url}/v1.0/users?$top=1", headers=headers).json()["value"][0]
    assert "accountEnabled" not in default and "signInActivity" not in default
    too_many = http.get(f"{served.url}/v1.0/users?$top=1000", headers=headers)
    assert too_many.status_code == 400
    unknown = http.get(f"{served.url}/v1.0/users?$select=shoeSize", headers=headers)
    assert unknown.status_code == 400


def test_emulator_membership_references(http: httpx.Client, served: ServedApp,
                                        emulator: GraphEmulator) -> None:
    user = emulator.add_user(f"m@{DOMAIN}")
    headers = token(http, served, emulator)
    ref_url = f"{served.url}/v1.0/groups/{emulator.finance}/members/$ref"
    body = {"@odata.id": f"https://graph.microsoft.com/v1.0/directoryObjects/{user}"}
    assert http.post(ref_url, json=body, headers=headers).status_code == 204
    again = http.post(ref_url, json=body, headers=headers)
    assert again.status_code == 400
    assert again.json()["error"]["message"].startswith(
        "One or more added object references already exist")
    members = http.get(f"{served.url}/v1.0/groups/{emulator.finance}/members",
                       headers=headers).json()
    assert [(m["@odata.type"], m["id"]) for m in members["value"]] == \
        [("#microsoft.graph.user", user)]
    remove = f"{served.url}/v1.0/groups/{emulator.finance}/members/{user}/$ref"
    assert http.delete(remove, headers=headers).status_code == 204
    assert http.delete(remove, headers=headers).status_code == 404


def test_emulator_batch_answers_each_request_on_its_own(
        http: httpx.Client, served: ServedApp, emulator: GraphEmulator) -> None:
    user = emulator.add_user(f"b@{DOMAIN}")
    headers = token(http, served, emulator)
    emulator.throttle_subrequests(1, retry_after=9, match="/users/")
    answer = http.post(f"{served.url}/v1.0/$batch", headers=headers, json={"requests": [
        {"id": "1", "method": "GET", "url": "/groups?$top=1"},
        {"id": "2", "method": "GET", "url": f"/users/{user}"},
        {"id": "3", "method": "POST",
         "url": f"/groups/{emulator.finance}/members/$ref",
         "headers": {"Content-Type": "application/json"},
         "body": {"@odata.id": f"https://graph.microsoft.com/v1.0/directoryObjects/{user}"}},
        {"id": "4", "method": "GET", "url": f"/users/{uuid.uuid4()}"},
    ]})
    assert answer.status_code == 200
    by_id = {r["id"]: r for r in answer.json()["responses"]}
    assert {k: r["status"] for k, r in by_id.items()} == {"1": 200, "2": 429, "3": 204,
                                                           "4": 404}
    assert by_id["2"]["headers"]["Retry-After"] == "9"
    assert by_id["2"]["body"]["error"]["code"] == "TooManyRequests"
    too_big = http.post(f"{served.url}/v1.0/$batch", headers=headers, json={"requests": [
        {"id": str(n), "method": "GET", "url": "/users"} for n in range(21)]})
    assert too_big.status_code == 400


def test_emulator_faults_carry_retry_after(http: httpx.Client, served: ServedApp,
                                           emulator: GraphEmulator) -> None:
    headers = token(http, served, emulator)
    emulator.throttle(1, retry_after=3)
    emulator.unavailable(1, retry_after=11)
    first = http.get(f"{served.url}/v1.0/users", headers=headers)
    second = http.get(f"{served.url}/v1.0/users", headers=headers)
    third = http.get(f"{served.url}/v1.0/users", headers=headers)
    assert [(r.status_code, r.headers.get("retry-after")) for r in (first, second, third)] == \
        [(429, "3"), (503, "11"), (200, None)]


def test_emulator_app_role_assignment_as_documented(
        http: httpx.Client, served: ServedApp, emulator: GraphEmulator) -> None:
    user = emulator.add_user(f"r@{DOMAIN}")
    sp = emulator.payroll
    role = emulator.app_role_id(sp, "Payroll.Clerk")
    headers = token(http, served, emulator)
    url = f"{served.url}/v1.0/users/{user}/appRoleAssignments"
    body = {"principalId": user, "resourceId": sp, "appRoleId": role}
    created = http.post(url, json=body, headers=headers)
    assert created.status_code == 201
    assert {k: created.json()[k] for k in ("principalId", "resourceId", "appRoleId",
                                           "principalType")} == \
        {"principalId": user, "resourceId": sp, "appRoleId": role, "principalType": "User"}
    assert http.post(url, json=body, headers=headers).status_code == 400
    listed = http.get(url, headers=headers).json()["value"]
    assert [a["id"] for a in listed] == [created.json()["id"]]
    assert http.delete(f"{url}/{created.json()['id']}", headers=headers).status_code == 204


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

