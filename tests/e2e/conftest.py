"""End-to-end stories over the HTTP API: an organisation, its targets and the engine.

Everything a person or an administrator does goes through the API (``POST /identities``,
``/groups``, ``/applications``, ``/entitlements``, ``/request-types``, ``/requests``,
``/approvals/{step}/decision``, ``/assignments/{id}/revoke``, ``/fulfilment/tasks``); the
provisioning engine runs inline (``run_until_idle`` over the app's own session factory,
settings and fixed clock); what lands in a target is read back from the target itself
(``ldapsearch``, the emulators' state), not from idgov.

    Maria Manager ── Jane Smith        Jane asks, Maria approves
    Otto Owner                         owns the applications and their entitlements
    Fay Fixer, Finn Fixer              the resolution group "Target support"
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from idgov.clock import FixedClock
from idgov.provisioning.connections import ConnectorCache
from idgov.provisioning.engine import RunStats, run_until_idle
from tests.conftest import PersonHeaders
from tests.emulators.graph import GraphEmulator, serve_graph
from tests.emulators.keycloak import KeycloakEmulator
from tests.emulators.serve import ServedApp, serve
from tests.emulators.tls import TestPki, make_pki
from tests.slapd import Slapd

REQUEST_TYPE = "target-access"
KEYCLOAK_SECRET = "e2e-provisioner-secret"
ENTRA_DOMAIN = "contoso.example"

PEOPLE = {  # key: (given name, family name, manager key, department)
    "maria": ("Maria", "Manager", None, "Finance"),
    "jane": ("Jane", "Smith", "maria", "Finance"),
    "otto": ("Otto", "Owner", None, "IT"),
    "fay": ("Fay", "Fixer", None, "IT"),
    "finn": ("Finn", "Fixer", None, "IT"),
}


@dataclass
class Story:
    """The organisation of the stories and terse calls to the API."""

    client: TestClient
    app: FastAPI
    people: PersonHeaders
    admin: dict[str, str]
    clock: FixedClock
    cache: ConnectorCache = field(default_factory=ConnectorCache)
    ids: dict[str, str] = field(default_factory=dict)

    # --- plumbing --------------------------------------------------------------------------
    def as_(self, who: str) -> dict[str, str]:
        return self.people[self.ids[who]]

    def call(self, method: str, url: str, status: int = 200, *, who: str | None = None,
             **kwargs: Any) -> Any:
        headers = self.admin if who is None else self.as_(who)
        resp = self.client.request(method, url, headers=headers, **kwargs)
        assert resp.status_code == status, f"{method} {url}: {resp.status_code} {resp.text}"
        return resp.json() if resp.content else None

    def run_engine(self, **kwargs: Any) -> RunStats:
        """The provisioning engine, inline, until nothing is due."""
        ctx = self.app.state.ctx
        return run_until_idle(ctx.session_factory, settings=ctx.settings, clock=self.clock,
                              connectors=self.cache, **kwargs)

    # --- the administrator's set-up ----------------------------------------------------------
    def application(self, key: str, name: str, kind: str, settings: dict[str, Any],
                    credentials: dict[str, Any] | None = None) -> str:
        body: dict[str, Any] = {"name": name, "connector_kind": kind, "settings": settings,
                                "owner_id": self.ids["otto"],
                                "resolution_group_id": self.ids["support"]}
        if credentials is not None:
            body["credentials"] = credentials
        created = self.call("POST", "/applications", 201, json=body)
        assert created["has_credentials"] is (credentials is not None)
        assert "credentials" not in created
        self.ids[key] = str(created["id"])
        return self.ids[key]

    def entitlement(self, key: str, application: str, name: str, native_id: str) -> str:
        created = self.call("POST", "/entitlements", 201, json={
            "application_id": self.ids[application], "native_id": native_id, "name": name,
            "owner_id": self.ids["otto"]})
        self.ids[key] = str(created["id"])
        return self.ids[key]

    # --- people's calls ------------------------------------------------------------------------
    def ask(self, who: str, *items: str, action: str = "grant") -> Any:
        """``who`` asks for (or gives back) entitlements named by their key."""
        return self.call("POST", "/requests", 201, who=who, json={
            "request_type": REQUEST_TYPE,
            "form_data": {"justification": "Needed for the month-end close"},
            "lines": [{"entitlement_id": self.ids[i], "action": action} for i in items]})

    def approve(self, request: Any, who: str = "maria") -> Any:
        """``who`` approves every waiting step of the request; answers the request after."""
        for line in request["lines"]:
            for step in line["steps"]:
                if step["state"] == "waiting":
                    self.call("POST", f"/approvals/{step['id']}/decision", who=who,
                              json={"decision": "approve", "comment": "ok"})
        return self.request(request["id"])

    def request(self, request_id: str) -> Any:
        return self.call("GET", f"/requests/{request_id}")

    def states(self, request_id: str) -> tuple[str, list[str]]:
        """(request state, states of its lines in order)."""
        request = self.request(request_id)
        return request["state"], [line["state"] for line in request["lines"]]

    def assignment_of(self, who: str, entitlement: str) -> str:
        """The active assignment of an entitlement to a person."""
        page = self.call("GET", "/assignments", params={
            "identity_id": self.ids[who], "entitlement_id": self.ids[entitlement],
            "active": "true"})
        active = [a for a in page["items"] if a.get("revoked_at") is None]
        assert len(active) == 1, page
        return str(active[0]["id"])

    def revoke(self, who: str, entitlement: str) -> None:
        """An administrator takes the access away (``POST /assignments/{id}/revoke``)."""
        assignment = self.assignment_of(who, entitlement)
        self.call("POST", f"/assignments/{assignment}/revoke",
                  json={"reason": "Moved to another team"})

    def operations(self, application: str) -> list[dict[str, Any]]:
        """(All) operations of an application, oldest first."""
        page = self.call("GET", "/provisioning/operations",
                         params={"application_id": self.ids[application], "limit": 200})
        assert page["next_cursor"] is None
        items: list[dict[str, Any]] = page["items"]
        return sorted(items, key=lambda o: (o["created_at"], o["ordinal"]))

    def summary(self, application: str) -> list[tuple[str, str, str]]:
        """(action, entitlement key or '-', state) of the application's operations."""
        names = {v: k for k, v in self.ids.items()}
        return sorted((o["action"], names.get(str(o["entitlement_id"]), "-"), o["state"])
                      for o in self.operations(application))

    def health(self, application: str) -> Any:
        return self.call("GET", f"/applications/{self.ids[application]}/health")


@pytest.fixture
def story(app: FastAPI, client: TestClient, people: PersonHeaders,
          admin_headers: dict[str, str], clock: FixedClock) -> Iterator[Story]:
    s = Story(client=client, app=app, people=people, admin=admin_headers, clock=clock)
    for key, (given, family, manager, department) in PEOPLE.items():
        body: dict[str, Any] = {"employee_id": f"E-{key.upper()}", "given_name": given,
                                "family_name": family, "display_name": f"{given} {family}",
                                "email": f"{given}.{family}@example.com".lower(),
                                "department": department}
        if manager is not None:
            body["manager_id"] = s.ids[manager]
        s.ids[key] = str(s.call("POST", "/identities", 201, json=body)["id"])
    s.ids["support"] = str(s.call("POST", "/groups", 201, json={
        "name": "Target support", "kind": "resolution", "owner_id": s.ids["otto"]})["id"])
    for member in ("fay", "finn"):
        s.call("POST", f"/groups/{s.ids['support']}/members", 201,
               json={"identity_id": s.ids[member]})
    s.call("POST", "/request-types", 201, json={
        "key": REQUEST_TYPE, "name": "Target access",
        "form_schema": {"type": "object", "properties": {"justification": {"type": "string"}},
                        "required": ["justification"]},
        "approval_stages": [{"approver": "manager"}], "auto_approve_max_risk": None,
        "automatic_max_risk": "critical"})
    try:
        yield s
    finally:
        s.cache.close()


# --- LDAP ---------------------------------------------------------------------------------------

def ldap_settings(server: Slapd) -> dict[str, Any]:
    return {"url": server.url, "bind_dn": server.rootdn, "base_dn": server.suffix,
            "users_ou": "ou=people", "groups_ou": "ou=groups", "disabled_ou": "ou=disabled",
            "disable_method": "move", "pool_size": 2, "timeout_seconds": 2}


# --- Keycloak -----------------------------------------------------------------------------------

@pytest.fixture
def keycloak() -> KeycloakEmulator:
    emu = KeycloakEmulator(realm="idgov", client_id="idgov-provisioner",
                           client_secret=KEYCLOAK_SECRET)
    emu.add_group("engineering")
    emu.add_realm_role("auditor")
    return emu


@pytest.fixture
def keycloak_served(keycloak: KeycloakEmulator) -> Iterator[ServedApp]:
    with serve(keycloak.app) as running:
        yield running
        keycloak.release()


@pytest.fixture
def keycloak_story(story: Story, keycloak_served: ServedApp) -> Iterator[Story]:
    """The story with the Keycloak emulator running; the engine's connectors are closed
    before the emulator stops (an idle keep-alive connection would hold its shutdown)."""
    yield story
    story.cache.close()


# --- Entra (Microsoft Graph) --------------------------------------------------------------------

@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TestPki:
    folder: Path = tmp_path_factory.mktemp("e2e-graph-pki")
    return make_pki(folder)


@pytest.fixture
def graph() -> GraphEmulator:
    emu = GraphEmulator(domains=(ENTRA_DOMAIN,))
    emu.add_group("Finance")
    return emu


@pytest.fixture
def graph_served(graph: GraphEmulator, pki: TestPki) -> Iterator[ServedApp]:
    with serve_graph(graph, pki) as served:
        yield served


@pytest.fixture
def graph_story(story: Story, graph_served: ServedApp) -> Iterator[Story]:
    yield story
    story.cache.close()
