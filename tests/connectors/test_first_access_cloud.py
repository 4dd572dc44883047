"""First access on the emulated cloud targets: Keycloak emails the person the actions to set
up their account (execute-actions-email), Entra issues a temporary access pass; both through
the real client libraries, against the emulators' documented behaviour."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest

from connectors.base import (
    CAN_ACTIVATION_EMAIL,
    CAN_TEMPORARY_ACCESS,
    AccountRef,
    AccountSpec,
    first_access_method,
)
from connectors.entra import EntraConnector
from connectors.errors import DataError, PolicyViolation, TargetUnavailable
from connectors.keycloak import KeycloakConnector
from tests.connectors import entra_support
from tests.connectors.entra_support import spec
from tests.emulators.graph import GraphEmulator
from tests.emulators.keycloak import KeycloakEmulator
from tests.emulators.serve import serve

SECRET = "first-access-secret-77"

pki = entra_support.pki
emulator = entra_support.emulator
served = entra_support.served
build = entra_support.build


# ---- Keycloak ---------------------------------------------------------------------------------

@pytest.fixture
def keycloak() -> KeycloakEmulator:
    emu = KeycloakEmulator(realm="idgov", client_id="idgov-provisioner", client_secret=SECRET)
    emu.add_client("portal")
    return emu


@pytest.fixture
def kc_build(keycloak: KeycloakEmulator) -> Iterator[Callable[..., KeycloakConnector]]:
    built: list[KeycloakConnector] = []
    with serve(keycloak.app) as running:
        def make(**extra: object) -> KeycloakConnector:
            built.append(KeycloakConnector(
                settings={"server_url": running.url + "/", "realm": "idgov",
                          "client_id": "idgov-provisioner", "timeout_seconds": 10, **extra},
                credentials={"client_secret": SECRET}))
            return built[-1]

        yield make
        for connector in built:
            connector.close()


def _kc_user(connector: KeycloakConnector, username: str, email: str | None) -> AccountRef:
    attributes = {"firstName": "Jane", "lastName": "Smith"}
    if email is not None:
        attributes["email"] = email
    return connector.create_account(AccountSpec(username=username, attributes=attributes))


def test_keycloak_emails_the_person_the_actions_to_set_up_the_account(
        kc_build: Callable[..., KeycloakConnector], keycloak: KeycloakEmulator) -> None:
    connector = kc_build()
    assert CAN_ACTIVATION_EMAIL in connector.capabilities
    assert first_access_method(connector) == CAN_ACTIVATION_EMAIL
    ref = _kc_user(connector, "jsmith", "Jane.Smith@example.com")
    connector.send_activation_email(ref, lifespan_seconds=7 * 86400)
    assert keycloak.sent_emails == [{
        "user_id": ref.native_id, "username": "jsmith", "email": "jane.smith@example.com",
        "actions": ["UPDATE_PASSWORD", "VERIFY_EMAIL"], "lifespan": 604800,
        "client_id": "account", "redirect_uri": None}]
    assert ("PUT", f"/admin/realms/idgov/users/{ref.native_id}/execute-actions-email") in \
        keycloak.admin_calls("PUT")


def test_keycloak_activation_actions_and_client_come_from_settings(
        kc_build: Callable[..., KeycloakConnector], keycloak: KeycloakEmulator) -> None:
    connector = kc_build(activation_actions=["UPDATE_PASSWORD", "CONFIGURE_TOTP"],
                         activation_client_id="portal",
                         activation_redirect_uri="https://portal.example/welcome")
    ref = _kc_user(connector, "jsmith", "jane.smith@example.com")
    connector.send_activation_email(ref, lifespan_seconds=3600)
    connector.send_activation_email(ref, lifespan_seconds=60, actions=["VERIFY_EMAIL"])
    assert [(e["actions"], e["lifespan"], e["client_id"], e["redirect_uri"])
            for e in keycloak.sent_emails] == [
        (["UPDATE_PASSWORD", "CONFIGURE_TOTP"], 3600, "portal",
         "https://portal.example/welcome"),
        (["VERIFY_EMAIL"], 60, "portal", "https://portal.example/welcome")]


def test_keycloak_refuses_a_person_without_email_as_a_data_error(
        kc_build: Callable[..., KeycloakConnector], keycloak: KeycloakEmulator) -> None:
    connector = kc_build()
    ref = _kc_user(connector, "nomail", None)
    with pytest.raises(DataError, match="User email missing"):
        connector.send_activation_email(ref, lifespan_seconds=3600)
    gone = _kc_user(connector, "gone", "gone@example.com")
    connector.disable_account(gone)
    with pytest.raises(DataError, match="User is disabled"):
        connector.send_activation_email(gone, lifespan_seconds=3600)
    with pytest.raises(DataError, match="invalid required actions"):
        connector.send_activation_email(_kc_user(connector, "x", "x@example.com"),
                                        lifespan_seconds=60, actions=["MAKE_COFFEE"])
    assert keycloak.sent_emails == []


def test_keycloak_without_mail_server_is_unavailable(
        kc_build: Callable[..., KeycloakConnector], keycloak: KeycloakEmulator) -> None:
    connector = kc_build()
    ref = _kc_user(connector, "jsmith", "jane.smith@example.com")
    keycloak.smtp_configured = False
    with pytest.raises(TargetUnavailable):
        connector.send_activation_email(ref, lifespan_seconds=3600)


# ---- Entra ------------------------------------------------------------------------------------

def test_entra_issues_a_temporary_access_pass_the_tenant_holds(
        build: Callable[..., EntraConnector], emulator: GraphEmulator) -> None:
    connector = build()
    assert CAN_TEMPORARY_ACCESS in connector.capabilities
    assert first_access_method(connector) == CAN_TEMPORARY_ACCESS
    ref = connector.create_account(spec("jane"))
    start = datetime(2030, 3, 2, 8, 0, tzinfo=UTC)
    tap = connector.issue_temporary_access_pass(ref, lifetime_minutes=480, usable_once=False,
                                                starts_at=start)
    held = emulator.access_passes[ref.native_id]
    assert held["temporaryAccessPass"] == tap.value
    assert (tap.starts_at, tap.lifetime_minutes, tap.usable_once) == (start, 480, False)
    assert tap.expires_at == start + timedelta(hours=8)
    assert held["startDateTime"] == "2030-03-02T08:00:00.000Z"


def test_entra_replaces_an_earlier_pass(build: Callable[..., EntraConnector],
                                        emulator: GraphEmulator) -> None:
    connector = build()
    ref = connector.create_account(spec("jane"))
    first = connector.issue_temporary_access_pass(ref, lifetime_minutes=60, usable_once=True)
    second = connector.issue_temporary_access_pass(ref, lifetime_minutes=60, usable_once=True)
    assert emulator.access_passes[ref.native_id]["temporaryAccessPass"] == second.value
    assert first.method_id != second.method_id


def test_entra_refuses_a_lifetime_outside_the_policy(build: Callable[..., EntraConnector],
                                                     emulator: GraphEmulator) -> None:
    connector = build()
    ref = connector.create_account(spec("jane"))
    with pytest.raises(DataError, match="between 10 and 43200"):
        connector.issue_temporary_access_pass(ref, lifetime_minutes=5, usable_once=True)
    emulator.tap_policy["maximumLifetimeInMinutes"] = 480
    with pytest.raises(DataError, match="policy"):
        connector.issue_temporary_access_pass(ref, lifetime_minutes=600, usable_once=True)
    assert emulator.access_passes == {}


def test_entra_without_the_permission_is_a_policy_violation(
        build: Callable[..., EntraConnector], emulator: GraphEmulator) -> None:
    connector = build()
    ref = connector.create_account(spec("jane"))
    emulator.permissions.discard("UserAuthenticationMethod.ReadWrite.All")
    with pytest.raises(PolicyViolation):
        connector.issue_temporary_access_pass(ref, lifetime_minutes=60, usable_once=True)
