"""An approved request lands in Keycloak (over HTTP) and in Entra ID (Microsoft Graph over
HTTPS), both emulated, through the real client libraries; revocation takes it back out. What
the targets hold is read from the emulators' own state."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from tests.e2e.conftest import ENTRA_DOMAIN, KEYCLOAK_SECRET, Story
from tests.emulators.graph import GraphEmulator
from tests.emulators.keycloak import KeycloakEmulator
from tests.emulators.serve import ServedApp
from tests.emulators.tls import TestPki


def _group_named(emulator: KeycloakEmulator, name: str) -> str:
    return next(g.id for g in emulator.realms["idgov"].groups.values() if g.name == name)


def test_an_approved_request_lands_in_keycloak_and_revocation_removes_it(
        keycloak_story: Story, keycloak: KeycloakEmulator,
        keycloak_served: ServedApp) -> None:
    story = keycloak_story
    keycloak.add_client("portal")
    keycloak.add_client_role("portal", "viewer")
    story.application("kc", "Customer portal", "keycloak", {
        "server_url": keycloak_served.url + "/", "realm": "idgov",
        "client_id": "idgov-provisioner", "verify": True, "timeout_seconds": 10,
        "clients": ["portal"]}, {"client_secret": KEYCLOAK_SECRET})
    story.entitlement("engineering", "kc", "Engineering group",
                      f"group:{_group_named(keycloak, 'engineering')}")
    story.entitlement("auditor", "kc", "Auditor role", "realm-role:auditor")
    story.entitlement("viewer", "kc", "Portal viewer", "client-role:portal:viewer")

    request = story.approve(story.ask("jane", "engineering", "auditor", "viewer"))
    assert keycloak.user_by_username("jsmith") is None  # nothing before the engine runs
    stats = story.run_engine()
    assert (stats.succeeded, stats.failed, stats.retry_scheduled) == (4, 0, 0)

    user = keycloak.user_by_username("jsmith")
    assert user is not None
    assert (user.first_name, user.last_name, user.email, user.enabled) == (
        "Jane", "Smith", "jane.smith@example.com", True)
    assert user.attributes == {"department": ["Finance"], "employeeNumber": ["E-JANE"]}
    assert user.password is None  # no password was set through the admin API
    assert keycloak.group_members(_group_named(keycloak, "engineering")) == {"jsmith"}
    assert "auditor" in keycloak.realm_roles_of(user.id)
    assert keycloak.client_roles_of(user.id, "portal") == {"viewer"}
    assert story.states(request["id"]) == ("fulfilled", ["fulfilled"] * 3)
    accounts = story.call("GET", "/accounts", params={"identity_id": story.ids["jane"]})
    assert [(a["native_id"], a["username"]) for a in accounts["items"]] == [
        (user.id, "jsmith")]

    for entitlement in ("engineering", "auditor", "viewer"):
        story.revoke("jane", entitlement)
    story.run_engine()
    assert keycloak.group_members(_group_named(keycloak, "engineering")) == set()
    assert "auditor" not in keycloak.realm_roles_of(user.id)
    assert keycloak.client_roles_of(user.id, "portal") == set()
    assert story.summary("kc") == [
        ("create_account", "-", "succeeded"), ("grant", "auditor", "succeeded"),
        ("grant", "engineering", "succeeded"), ("grant", "viewer", "succeeded"),
        ("revoke", "auditor", "succeeded"), ("revoke", "engineering", "succeeded"),
        ("revoke", "viewer", "succeeded")]
    assert [u.username for u in keycloak.realms["idgov"].users.values()] == ["jsmith"]


def _entra_settings(served: ServedApp, graph: GraphEmulator, pki: TestPki,
                    resource: str) -> dict[str, Any]:
    return {"authority": f"{served.url}/{graph.tenant_id}", "client_id": graph.client_id,
            "graph_url": f"{served.url}/v1.0", "ca_file": str(pki.ca_file),
            "upn_domain": ENTRA_DOMAIN, "app_role_resources": [resource]}


def test_an_approved_request_lands_in_entra_and_revocation_removes_it(
        graph_story: Story, graph: GraphEmulator, graph_served: ServedApp,
        pki: TestPki) -> None:
    story = graph_story
    finance = next(g for g, v in graph.groups.items() if v["displayName"] == "Finance")
    payroll = graph.add_service_principal("Payroll", {"Payroll.Clerk": "Clerk"})
    clerk = graph.app_role_id(payroll, "Payroll.Clerk")
    story.application("entra", "Entra ID", "entra",
                      _entra_settings(graph_served, graph, pki, payroll),
                      {"client_secret": graph.client_secret})
    story.entitlement("finance", "entra", "Finance group", f"group:{finance}")
    story.entitlement("clerk", "entra", "Payroll clerk", f"app-role:{payroll}:{clerk}")

    request = story.approve(story.ask("jane", "finance", "clerk"))
    assert graph.users == {}
    stats = story.run_engine()
    assert (stats.succeeded, stats.failed, stats.retry_scheduled) == (3, 0, 0)

    user = graph.user_by_upn(f"jsmith@{ENTRA_DOMAIN}")
    assert user is not None
    assert {k: user.get(k) for k in ("displayName", "mailNickname", "department",
                                     "employeeId", "accountEnabled")} == {
        "displayName": "Jane Smith", "mailNickname": "jsmith", "department": "Finance",
        "employeeId": "E-JANE", "accountEnabled": True}
    assert graph.members[finance] == [user["id"]]
    assert [(a["principalId"], a["resourceId"], a["appRoleId"])
            for a in graph.assignments.values()] == [(user["id"], payroll, clerk)]
    assert story.states(request["id"]) == ("fulfilled", ["fulfilled", "fulfilled"])
    # The initial password was made at random and went to Graph only.
    profile = graph.password_profiles.get(user["id"])
    assert profile is not None and profile.get("forceChangePasswordNextSignIn") is True
    accounts = story.call("GET", "/accounts", params={"identity_id": story.ids["jane"]})
    assert [(a["native_id"], a["username"]) for a in accounts["items"]] == [
        (user["id"], f"jsmith@{ENTRA_DOMAIN}")]
    assert len(graph.received_passwords) == 1
    for password in graph.received_passwords:
        assert password not in str(accounts)
        assert password not in str(story.operations("entra"))

    story.revoke("jane", "finance")
    story.revoke("jane", "clerk")
    story.run_engine()
    assert graph.members[finance] == []
    assert graph.assignments == {}
    assert story.summary("entra") == [
        ("create_account", "-", "succeeded"), ("grant", "clerk", "succeeded"),
        ("grant", "finance", "succeeded"), ("revoke", "clerk", "succeeded"),
        ("revoke", "finance", "succeeded")]
    assert len(graph.users) == 1


def test_keycloak_down_for_a_while_delays_the_work_which_then_completes_once(
        keycloak_story: Story, keycloak: KeycloakEmulator,
        keycloak_served: ServedApp) -> None:
    story = keycloak_story
    story.application("kc", "Customer portal", "keycloak", {
        "server_url": keycloak_served.url + "/", "realm": "idgov",
        "client_id": "idgov-provisioner", "verify": True, "timeout_seconds": 10},
        {"client_secret": KEYCLOAK_SECRET})
    story.entitlement("engineering", "kc", "Engineering group",
                      f"group:{_group_named(keycloak, 'engineering')}")
    story.entitlement("auditor", "kc", "Auditor role", "realm-role:auditor")
    request = story.approve(story.ask("jane", "engineering", "auditor"))

    keycloak_served.stop()
    for _ in range(3):
        assert story.run_engine().failed == 0
        story.clock.advance(timedelta(hours=1))
    assert story.summary("kc") == [("create_account", "-", "retry_scheduled"),
                                   ("grant", "auditor", "pending"),
                                   ("grant", "engineering", "pending")]
    health = story.health("kc")
    assert (health["connection"]["ok"], health["connection"]["error_category"]) == (
        False, "system_unavailable")
    assert (health["waiting_operations"], health["failed_operations"]) == (3, 0)

    keycloak_served.start()
    story.clock.advance(timedelta(hours=2))
    story.run_engine()
    assert story.states(request["id"]) == ("fulfilled", ["fulfilled", "fulfilled"])
    assert [u.username for u in keycloak.realms["idgov"].users.values()] == ["jsmith"]
    user = keycloak.user_by_username("jsmith")
    assert user is not None and "auditor" in keycloak.realm_roles_of(user.id)
    assert keycloak.group_members(_group_named(keycloak, "engineering")) == {"jsmith"}
