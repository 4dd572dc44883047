"""The HR stories' world: the e2e organisation (:mod:`tests.e2e.conftest`), an HR source
whose CSV files use an HR system's own headers, birthright rules over HR attributes, and
the targets those rules reach (the real slapd; Keycloak and Entra emulators when asked).

Everything goes through the HTTP API (``/hr/sources``, ``/hr/sources/{id}/upload``,
``/hr/runs``, ``/birthright-rules``, ``/roles``, ...); the periodic work runs inline, as
the workers run it: lifecycle events (:func:`idgov.lifecycle.tasks.run_due_events`), the
request sweep that ends expired assignments (:func:`idgov.requests.cli.sweep`), and the
provisioning engine. The clock is a FixedClock moved forward; nothing sleeps.

Birthright rules (roles, each holding entitlements of the directory and, with the cloud
targets, of Keycloak and Entra), for workers of the London and Los Angeles offices:

    Staff          employment_type = employee   cn=staff (+ Keycloak group, Entra group)
    Finance        department = Finance         cn=finance-share
    Sales          department = Sales           cn=sales-share
    Contractors    employment_type = contractor cn=contractors
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select

from idgov.lifecycle.tasks import run_due_events
from idgov.models.assignment import Assignment
from idgov.models.audit import AuditEvent
from idgov.models.identity import Identity
from idgov.models.provisioning import ProvisioningOperation
from idgov.requests.cli import sweep
from tests.e2e.conftest import ENTRA_DOMAIN, KEYCLOAK_SECRET, Story, ldap_settings
from tests.emulators.graph import GraphEmulator
from tests.emulators.keycloak import KeycloakEmulator
from tests.emulators.serve import ServedApp
from tests.emulators.tls import TestPki
from tests.slapd import Slapd

PEOPLE_OU = "ou=people,dc=example,dc=com"
DISABLED_OU = "ou=disabled,dc=example,dc=com"
GROUPS_OU = "ou=groups,dc=example,dc=com"
LDAP_GROUPS = ("staff", "finance-share", "sales-share", "contractors", "payroll")

# The HR system's column names (the source maps them to canonical fields).
MAPPING = {
    "employee_id": "Worker ID", "given_name": "First Name", "family_name": "Last Name",
    "email": "Work Email", "manager_employee_id": "Manager ID", "department": "Department",
    "location": "Location", "employment_type": "Worker Type", "hire_date": "Start Date",
    "termination_date": "End Date", "job_code": "Job Code",
}
HEADER = ["Worker ID", "First Name", "Last Name", "Work Email", "Manager ID", "Department",
          "Location", "Worker Type", "Start Date", "End Date", "Job Code", "Badge Colour"]
ZONES = {"London": "Europe/London", "Los Angeles": "America/Los_Angeles"}


def group_dn(name: str) -> str:
    return f"cn={name},{GROUPS_OU}"


def person_dn(uid: str, ou: str = PEOPLE_OU) -> str:
    return f"uid={uid},{ou}"


def worker(employee_id: str, given: str, family: str, *, manager: str = "E-MARIA",
           department: str = "Finance", location: str = "London",
           kind: str = "employee", start: str = "2025-06-02", end: str = "",
           email: str | None = None, job: str = "FIN-1") -> dict[str, str]:
    """One row of the HR file, by the HR system's column names."""
    ascii_name = f"{given}.{family}".lower().replace("'", "").replace(" ", "")
    return {"Worker ID": employee_id, "First Name": given, "Last Name": family,
            "Work Email": email if email is not None else f"{ascii_name}@example.com",
            "Manager ID": manager, "Department": department, "Location": location,
            "Worker Type": kind, "Start Date": start, "End Date": end, "Job Code": job,
            "Badge Colour": "blue"}


def _cell(value: str) -> str:
    if any(c in value for c in ',"\r\n'):
        return '"' + value.replace('"', '""') + '"'
    return value


def csv_bytes(rows: list[dict[str, str]], *, bom: bool = True, crlf: bool = True,
              header: list[str] | None = None) -> bytes:
    """A CSV file as an HR system exports it: UTF-8 with a byte order mark, CRLF lines."""
    columns = header or HEADER
    eol = "\r\n" if crlf else "\n"
    lines = [",".join(_cell(c) for c in columns)]
    lines += [",".join(_cell(row.get(c, "")) for c in columns) for row in rows]
    text = eol.join(lines) + eol
    return (b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8")


def population(n: int, *, prefix: str = "W", department: str = "Finance"
               ) -> list[dict[str, str]]:
    """``n`` workers reporting to Maria (``W001`` ...)."""
    return [worker(f"{prefix}{i:03d}", "Worker", f"Number{i:03d}", department=department)
            for i in range(1, n + 1)]


@dataclass
class Hr:
    """Terse HR calls over a :class:`Story` (which holds Maria, Jane, Otto, Fay, Finn)."""

    story: Story
    source_id: str = ""
    roles: dict[str, str] = field(default_factory=dict)
    rules: dict[str, str] = field(default_factory=dict)

    # --- set-up ----------------------------------------------------------------------------
    def create_source(self, name: str = "Workday export", **overrides: Any) -> dict[str, Any]:
        body: dict[str, Any] = {"name": name, "kind": "csv", "column_mapping": MAPPING,
                                "default_mode": "snapshot", "mover_grace_days": 7,
                                "account_retention_days": 30, "default_time_zone": "UTC",
                                "location_time_zones": ZONES}
        body.update(overrides)
        source: dict[str, Any] = self.story.call("POST", "/hr/sources", 201, json=body)
        self.source_id = str(source["id"])
        return source

    def role(self, key: str, name: str, *entitlements: str) -> str:
        """A role (owned by Otto) holding the entitlements named by their story keys."""
        created = self.story.call("POST", "/roles", 201, json={
            "name": name, "owner_id": self.story.ids["otto"]})
        self.roles[key] = self.story.ids[key] = str(created["id"])
        for entitlement in entitlements:
            self.story.call("POST", f"/roles/{created['id']}/entitlements", 201,
                            json={"entitlement_id": self.story.ids[entitlement]})
        return self.roles[key]

    def rule(self, name: str, attribute: str, value: str, role: str) -> dict[str, Any]:
        created: dict[str, Any] = self.story.call("POST", "/birthright-rules", 201, json={
            "name": name, "condition": {"all": [
                {"attribute": attribute, "op": "eq", "value": value},
                # (the story's people, created by hand with no location, match no rule)
                {"attribute": "location", "op": "in", "value": sorted(ZONES)}]},
            "role_id": self.roles[role]})
        self.rules[name] = str(created["id"])
        return created

    # --- feeds -------------------------------------------------------------------------------
    def upload(self, rows: list[dict[str, str]] | bytes, *, mode: str | None = None,
               status: int = 201, file_name: str = "workers.csv",
               source_id: str | None = None) -> Any:
        data = rows if isinstance(rows, bytes) else csv_bytes(rows)
        params = {"file_name": file_name} | ({"mode": mode} if mode else {})
        resp = self.story.client.post(
            f"/hr/sources/{source_id or self.source_id}/upload", params=params, content=data,
            headers={**self.story.admin, "Content-Type": "text/csv"})
        assert resp.status_code == status, f"upload: {resp.status_code} {resp.text}"
        return resp.json()

    def push(self, body: dict[str, Any], status: int = 201) -> Any:
        return self.story.call("POST", f"/hr/sources/{self.source_id}/push", status, json=body)

    def changes(self, run_id: str) -> list[dict[str, Any]]:
        page = self.story.call("GET", f"/hr/runs/{run_id}/changes", params={"limit": 200})
        assert page["next_cursor"] is None
        items: list[dict[str, Any]] = page["items"]
        return sorted(items, key=lambda c: c["seq"])

    # --- periodic work ---------------------------------------------------------------------
    def process_due(self) -> int:
        """The workers' lifecycle job: due activations, terminations and deletions."""
        ctx = self.story.app.state.ctx
        return run_due_events(ctx.session_factory, clock=self.story.clock)

    def sweep(self) -> int:
        """The request sweep (its expiry part ends assignments whose end has come)."""
        ctx = self.story.app.state.ctx
        return sweep(ctx.session_factory, settings=ctx.settings, clock=self.story.clock).expired

    # --- reading back ------------------------------------------------------------------------
    def identity(self, employee_id: str) -> dict[str, Any]:
        page = self.story.call("GET", "/identities", params={"employee_id": employee_id})
        assert len(page["items"]) == 1, page
        found: dict[str, Any] = page["items"][0]
        return found

    def assignments(self, employee_id: str, *, active: bool | None = True
                    ) -> list[dict[str, Any]]:
        params: dict[str, Any] = {"identity_id": self.identity(employee_id)["id"],
                                  "limit": 200}
        if active is not None:
            params["active"] = str(active).lower()
        items: list[dict[str, Any]] = self.story.call("GET", "/assignments",
                                                      params=params)["items"]
        return items

    def roles_of(self, employee_id: str) -> dict[str, str | None]:
        """Role key -> valid_until of the roles in force (None: open-ended)."""
        names = {v: k for k, v in self.roles.items()}
        return {names[str(a["role_id"])]: a["valid_until"]
                for a in self.assignments(employee_id) if a.get("role_id")}

    def counts(self) -> dict[str, int]:
        """Rows of what a feed may change (identity.* audit events included)."""
        with self.story.app.state.ctx.session_factory() as session:
            def count(model: Any, *where: Any) -> int:
                return int(session.scalar(select(func.count()).select_from(model)
                                          .where(*where)) or 0)
            return {
                "identities": count(Identity),
                "active": count(Identity, Identity.lifecycle_state == "active"),
                "assignments": count(Assignment),
                "ended": count(Assignment, Assignment.revoked_at.is_not(None)),
                "operations": count(ProvisioningOperation),
                "identity_events": count(AuditEvent, AuditEvent.action.like("identity.%")),
            }


# --- targets -------------------------------------------------------------------------------------


def directory(hr: Hr, server: Slapd) -> None:
    """The directory, its groups as entitlements, and the four birthright roles/rules."""
    story = hr.story
    for name in LDAP_GROUPS:
        server.add_group(name)
    story.application("ldap", "Corporate directory", "ldap", ldap_settings(server),
                      {"bind_password": server.rootpw})
    for name in LDAP_GROUPS:
        story.entitlement(name, "ldap", name.replace("-", " ").title(), group_dn(name))


def birthright(hr: Hr, *staff_extra: str) -> None:
    hr.role("r_staff", "Staff", "staff", *staff_extra)
    hr.role("r_finance", "Finance", "finance-share")
    hr.role("r_sales", "Sales", "sales-share")
    hr.role("r_contractors", "Contractors", "contractors")
    hr.rule("Employees are staff", "employment_type", "employee", "r_staff")
    hr.rule("Finance department", "department", "Finance", "r_finance")
    hr.rule("Sales department", "department", "Sales", "r_sales")
    hr.rule("Contractors", "employment_type", "contractor", "r_contractors")


def keycloak_target(hr: Hr, emulator: KeycloakEmulator, served: ServedApp) -> None:
    hr.story.application("kc", "Customer portal", "keycloak", {
        "server_url": served.url + "/", "realm": "idgov", "client_id": "idgov-provisioner",
        "timeout_seconds": 10}, {"client_secret": KEYCLOAK_SECRET})
    engineering = next(g.id for g in emulator.realms["idgov"].groups.values()
                       if g.name == "engineering")
    hr.story.entitlement("kc_engineering", "kc", "Engineering group", f"group:{engineering}")


def entra_target(hr: Hr, graph: GraphEmulator, served: ServedApp, pki: TestPki) -> None:
    hr.story.application("entra", "Entra ID", "entra", {
        "authority": f"{served.url}/{graph.tenant_id}", "client_id": graph.client_id,
        "graph_url": f"{served.url}/v1.0", "ca_file": str(pki.ca_file),
        "upn_domain": ENTRA_DOMAIN}, {"client_secret": graph.client_secret})
    finance = next(g for g, v in graph.groups.items() if v["displayName"] == "Finance")
    hr.story.entitlement("entra_finance", "entra", "Entra Finance group", f"group:{finance}")


def everywhere(story: Story, server: Slapd, keycloak: KeycloakEmulator,
               keycloak_served: ServedApp, graph: GraphEmulator, graph_served: ServedApp,
               pki: TestPki, **source: Any) -> Hr:
    """The three targets (the directory, Keycloak, Entra), the birthright rules with Staff
    also giving the Keycloak engineering group and the Entra Finance group, and the HR
    source (``source``: its fields other than the defaults of :meth:`Hr.create_source`)."""
    hr = Hr(story)
    directory(hr, server)
    keycloak_target(hr, keycloak, keycloak_served)
    entra_target(hr, graph, graph_served, pki)
    birthright(hr, "kc_engineering", "entra_finance")
    hr.create_source(**source)
    return hr


def members(server: Slapd, name: str) -> list[str]:
    """Members of a directory group (without its placeholder member)."""
    dn = group_dn(name)
    found = server.ldapsearch(dn, attrs=["member"], scope="base")
    assert len(found) == 1, found
    return sorted(m for m in found[0].get("member") if m.lower() != dn.lower())


def people(server: Slapd, ou: str = PEOPLE_OU) -> list[str]:
    return sorted(e.dn for e in server.ldapsearch(ou, "(objectClass=inetOrgPerson)"))


def new_id() -> str:
    return str(uuid.uuid4())
