"""The Graph emulator's own strictness, checked over HTTPS against Microsoft's documented
examples, so that the Entra connector's tests (:mod:`test_entra`) run against a faithful
Graph; the shared fixtures live in :mod:`entra_support`."""

from __future__ import annotations

import ssl
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.connectors import entra_support
from tests.connectors.entra_support import DOMAIN
from tests.emulators.graph import GraphEmulator
from tests.emulators.serve import ServedApp
from tests.emulators.tls import TestPki

# The shared fixtures, bound here so that pytest finds them for this module.
pki = entra_support.pki
emulator = entra_support.emulator
served = entra_support.served


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
