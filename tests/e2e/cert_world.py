"""The certification stories' world: the e2e organisation (:mod:`tests.e2e.conftest`), the
real slapd as the target (its groups are the entitlements), and terse calls to the
certification API (``/certification/campaigns``, ``/certification/items``, the report).

The periodic work runs inline, as the workers run it: the certification jobs (deadlines,
verification of remediation, micro-campaigns) over the app's own session factory, settings
and fixed clock; the provisioning engine through :meth:`Story.run_engine`. What is in the
directory is read back with ldap3 from the server itself.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from typing import Any

from ldap3 import BASE, Connection, Server

from certification.deadlines import run_deadlines
from certification.micro import open_micro_campaigns
from certification.verification import verify_remediation
from idgov.db.session import unit_of_work
from idgov.types import Actor
from tests.e2e.conftest import Story, ldap_settings
from tests.slapd import Slapd

GROUPS_OU = "ou=groups,dc=example,dc=com"
JOBS = Actor.system("periodic-jobs")


def group_dn(name: str) -> str:
    return f"cn={name},{GROUPS_OU}"


def ldap_members(server: Slapd, name: str) -> list[str]:
    """The members of a directory group (without its placeholder member), read with ldap3."""
    dn = group_dn(name)
    conn = Connection(Server(server.url), user=server.rootdn, password=server.rootpw,
                      auto_bind=True)
    try:
        assert conn.search(dn, "(objectClass=*)", search_scope=BASE, attributes=["member"])
        [entry] = conn.entries
        values = [str(m) for m in entry.entry_attributes_as_dict.get("member", [])]
    finally:
        conn.unbind()
    return sorted(m.lower() for m in values if m.lower() != dn.lower())


@dataclass
class Cert:
    """Certification calls over a :class:`Story`."""

    story: Story

    # --- set-up --------------------------------------------------------------------------------
    def person(self, key: str, given: str, family: str, *, manager: str | None = None,
               department: str = "Finance") -> str:
        body: dict[str, Any] = {"employee_id": f"E-{key.upper()}", "given_name": given,
                                "family_name": family, "display_name": f"{given} {family}",
                                "email": f"{given}.{family}@example.com".lower(),
                                "department": department}
        if manager is not None:
            body["manager_id"] = self.story.ids[manager]
        self.story.ids[key] = str(self.story.call("POST", "/identities", 201, json=body)["id"])
        return self.story.ids[key]

    def directory(self, server: Slapd, groups: dict[str, dict[str, Any]]) -> str:
        """The directory application (owned by Otto) and its groups as entitlements:
        ``groups`` maps a group name to the entitlement's extra fields (risk, privileged)."""
        for name in groups:
            server.add_group(name)
        app = self.story.application("ldap", "Corporate directory", "ldap",
                                     ldap_settings(server), {"bind_password": server.rootpw})
        for name, extra in groups.items():
            created = self.story.call("POST", "/entitlements", 201, json={
                "application_id": app, "native_id": group_dn(name),
                "name": name.replace("-", " ").title(), "owner_id": self.story.ids["otto"],
                **extra})
            self.story.ids[name] = str(created["id"])
        return app

    def grant(self, who: str, entitlement: str) -> str:
        """An administrator's grant; returns the assignment id (kept as ``who/entitlement``)."""
        created = self.story.call("POST", "/assignments", 201, json={
            "identity_id": self.story.ids[who], "entitlement_id": self.story.ids[entitlement],
            "reason": "Set up for the review"})
        self.story.ids[f"{who}/{entitlement}"] = str(created["id"])
        return str(created["id"])

    def dn(self, who: str, application: str = "ldap") -> str:
        accounts = self.story.call("GET", "/accounts", params={
            "identity_id": self.story.ids[who],
            "application_id": self.story.ids[application]})["items"]
        assert len(accounts) == 1, accounts
        return str(accounts[0]["native_id"]).lower()

    # --- campaigns -----------------------------------------------------------------------------
    def campaign(self, **body: Any) -> dict[str, Any]:
        """Create (as an administrator) and launch a campaign."""
        created = self.story.call("POST", "/certification/campaigns", 201, json=body)
        assert created["state"] == "draft"
        launched: dict[str, Any] = self.story.call(
            "POST", f"/certification/campaigns/{created['id']}/launch")
        assert launched["state"] == "active"
        return launched

    def get(self, campaign_id: str) -> dict[str, Any]:
        found: dict[str, Any] = self.story.call("GET", f"/certification/campaigns/{campaign_id}")
        return found

    def items(self, campaign_id: str, who: str | None = None,
              **filters: Any) -> list[dict[str, Any]]:
        page = self.story.call("GET", f"/certification/campaigns/{campaign_id}/items",
                               who=who, params={"limit": 500, **filters})
        assert page["next_cursor"] is None
        items: list[dict[str, Any]] = page["items"]
        return items

    def item(self, campaign_id: str, holder: str, entitlement: str,
             who: str | None = None) -> dict[str, Any]:
        """The item of ``holder``'s ``entitlement`` (as ``who`` sees it)."""
        found = [i for i in self.items(campaign_id, who)
                 if i["identity_id"] == self.story.ids[holder]
                 and i["entitlement_id"] == self.story.ids[entitlement]]
        assert len(found) == 1, found
        return found[0]

    def read_item(self, item_id: str) -> dict[str, Any]:
        found: dict[str, Any] = self.story.call("GET", f"/certification/items/{item_id}")
        return found

    def decide(self, item_id: str, decision: str, who: str, *, comment: str | None = None,
               status: int = 200) -> Any:
        body: dict[str, Any] = {"decision": decision}
        if comment is not None:
            body["comment"] = comment
        return self.story.call("POST", f"/certification/items/{item_id}/decision", status,
                               who=who, json=body)

    def sign_off(self, campaign_id: str, who: str, status: int = 200) -> Any:
        return self.story.call("POST", f"/certification/campaigns/{campaign_id}/sign-off",
                               status, who=who)

    def report(self, campaign_id: str, fmt: str) -> Any:
        resp = self.story.client.get(f"/certification/campaigns/{campaign_id}/report",
                                     params={"format": fmt}, headers=self.story.admin)
        assert resp.status_code == 200, resp.text
        if fmt == "json":
            return json.loads(resp.text)
        return list(csv.DictReader(io.StringIO(resp.text)))

    # --- people's inboxes ------------------------------------------------------------------------
    def notifications(self, who: str, kind: str | None = None) -> list[dict[str, Any]]:
        page = self.story.call("GET", "/me/notifications", who=who, params={"limit": 200})
        items: list[dict[str, Any]] = page["items"]
        return [n for n in items if kind is None or n["kind"] == kind]

    # --- the workers' jobs -----------------------------------------------------------------------
    def run_deadlines(self) -> int:
        ctx = self.story.app.state.ctx
        return run_deadlines(ctx.session_factory, ctx.settings, self.story.clock, JOBS)

    def verify(self) -> int:
        with unit_of_work(self.story.app.state.ctx.session_factory) as session:
            return verify_remediation(session, clock=self.story.clock, actor=JOBS)

    def open_micro(self) -> int:
        with unit_of_work(self.story.app.state.ctx.session_factory) as session:
            return open_micro_campaigns(session, actor=JOBS, clock=self.story.clock)

    def reconcile(self, application: str = "ldap") -> dict[str, Any]:
        run: dict[str, Any] = self.story.call(
            "POST", f"/applications/{self.story.ids[application]}/reconcile", 201, json={})
        return run
