"""The emulators' first-access endpoints answer as documented: Keycloak's
``execute-actions-email`` (204, its 400 refusals in Keycloak's order) and Graph's
``temporaryAccessPassMethods`` (Microsoft's documented create example and its response
shape, the lifetime bounds, one pass per user, delete)."""

from __future__ import annotations

import ssl
from collections.abc import Iterator

import httpx
import pytest
from starlette.testclient import TestClient

from tests.connectors import entra_support
from tests.connectors.entra_support import DOMAIN
from tests.emulators.graph import GraphEmulator
from tests.emulators.keycloak import KeycloakEmulator
from tests.emulators.serve import ServedApp
from tests.emulators.tls import TestPki

SECRET = "emulator-test-secret"
USERS = "/admin/realms/idgov/users"

pki = entra_support.pki
emulator = entra_support.emulator
served = entra_support.served


# ---- Keycloak ---------------------------------------------------------------------------------

@pytest.fixture
def keycloak() -> KeycloakEmulator:
    return KeycloakEmulator(realm="idgov", client_id="provisioner", client_secret=SECRET)


@pytest.fixture
def kc(keycloak: KeycloakEmulator) -> Iterator[TestClient]:
    with TestClient(keycloak.app, base_url="http://kc.test") as client:
        answer = client.post("/realms/idgov/protocol/openid-connect/token", data={
            "grant_type": "client_credentials", "client_id": "provisioner",
            "client_secret": SECRET})
        client.headers["Authorization"] = f"Bearer {answer.json()['access_token']}"
        yield client


def test_keycloak_execute_actions_email_answers_204_and_records_the_email(
        kc: TestClient, keycloak: KeycloakEmulator) -> None:
    user = keycloak.add_user("jsmith", email="Jane@Example.com")
    answer = kc.put(f"{USERS}/{user}/execute-actions-email",
                    params={"lifespan": "86400"}, json=["UPDATE_PASSWORD", "VERIFY_EMAIL"])
    assert (answer.status_code, answer.content) == (204, b"")
    assert keycloak.sent_emails == [{
        "user_id": user, "username": "jsmith", "email": "jane@example.com",
        "actions": ["UPDATE_PASSWORD", "VERIFY_EMAIL"], "lifespan": 86400,
        "client_id": "account", "redirect_uri": None}]


@pytest.mark.parametrize(("email", "enabled", "params", "actions", "status", "message"), [
    (None, True, {}, ["UPDATE_PASSWORD"], 400, "User email missing"),
    ("a@example.com", False, {}, ["UPDATE_PASSWORD"], 400, "User is disabled"),
    ("a@example.com", True, {"redirect_uri": "https://x.example"}, ["UPDATE_PASSWORD"], 400,
     "Client id missing"),
    ("a@example.com", True, {"client_id": "nobody"}, ["UPDATE_PASSWORD"], 400,
     "Client doesn't exist"),
    ("a@example.com", True, {}, ["FLY"], 400, "Provided invalid required actions"),
])
def test_keycloak_execute_actions_email_refusals(
        kc: TestClient, keycloak: KeycloakEmulator, email: str | None, enabled: bool,
        params: dict[str, str], actions: list[str], status: int, message: str) -> None:
    user = keycloak.add_user("someone", email=email, enabled=enabled)
    answer = kc.put(f"{USERS}/{user}/execute-actions-email", params=params, json=actions)
    assert answer.status_code == status
    assert answer.json() == {"errorMessage": message}
    assert keycloak.sent_emails == []


def test_keycloak_execute_actions_email_for_an_unknown_user_is_404(kc: TestClient) -> None:
    answer = kc.put(f"{USERS}/00000000-0000-0000-0000-000000000000/execute-actions-email",
                    json=["UPDATE_PASSWORD"])
    assert answer.status_code == 404


# ---- Graph ------------------------------------------------------------------------------------

@pytest.fixture
def http(pki: TestPki, served: ServedApp, emulator: GraphEmulator) -> Iterator[httpx.Client]:
    with httpx.Client(verify=ssl.create_default_context(cafile=str(pki.ca_file)),
                      trust_env=False) as client:
        answer = client.post(f"{served.url}/{emulator.tenant_id}/oauth2/v2.0/token", data={
            "grant_type": "client_credentials", "client_id": emulator.client_id,
            "client_secret": emulator.client_secret,
            "scope": "https://graph.microsoft.com/.default"})
        client.headers["Authorization"] = f"Bearer {answer.json()['access_token']}"
        yield client


def _taps(served: ServedApp, user: str) -> str:
    return f"{served.url}/v1.0/users/{user}/authentication/temporaryAccessPassMethods"


def test_graph_creates_a_pass_as_the_documented_example(
        http: httpx.Client, served: ServedApp, emulator: GraphEmulator) -> None:
    user = emulator.add_user(f"kim@{DOMAIN}")
    # Microsoft's documented request body.
    answer = http.post(_taps(served, f"kim@{DOMAIN}"), json={
        "startDateTime": "2022-06-05T00:00:00.000Z", "lifetimeInMinutes": 60,
        "isUsableOnce": False})
    assert answer.status_code == 201
    body = answer.json()
    assert set(body) == {"@odata.context", "id", "temporaryAccessPass", "createdDateTime",
                         "startDateTime", "lifetimeInMinutes", "isUsableOnce", "isUsable",
                         "methodUsabilityReason"}
    assert body["@odata.context"].endswith(
        "/authentication/temporaryAccessPassMethods/$entity")
    assert (body["startDateTime"], body["lifetimeInMinutes"], body["isUsableOnce"]) == (
        "2022-06-05T00:00:00.000Z", 60, False)
    assert (body["isUsable"], body["methodUsabilityReason"]) == (False, "Expired")
    assert emulator.access_passes[user]["temporaryAccessPass"] == body["temporaryAccessPass"]
    listed = http.get(_taps(served, user)).json()["value"]
    assert [(m["id"], m["temporaryAccessPass"]) for m in listed] == [(body["id"], None)]
    again = http.post(_taps(served, user), json={"lifetimeInMinutes": 60})
    assert again.status_code == 400  # one pass per user
    assert http.delete(f"{_taps(served, user)}/{body['id']}").status_code == 204
    assert http.delete(f"{_taps(served, user)}/{body['id']}").status_code == 404
    fresh = http.post(_taps(served, user), json={})
    assert fresh.status_code == 201
    assert (fresh.json()["lifetimeInMinutes"], fresh.json()["isUsable"]) == (60, True)


@pytest.mark.parametrize("body", [
    {"lifetimeInMinutes": 9}, {"lifetimeInMinutes": 43201}, {"lifetimeInMinutes": "60"},
    {"isUsableOnce": "yes"}, {"startDateTime": "tomorrow"}, {"expiresAt": "2030-01-01"},
])
def test_graph_refuses_a_malformed_pass_request(http: httpx.Client, served: ServedApp,
                                                emulator: GraphEmulator,
                                                body: dict[str, object]) -> None:
    user = emulator.add_user(f"kim@{DOMAIN}")
    answer = http.post(_taps(served, user), json=body)
    assert answer.status_code == 400
    assert set(answer.json()["error"]) >= {"code", "message"}
    assert emulator.access_passes == {}
