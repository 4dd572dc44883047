"""Aggregation of a pre-filled OpenLDAP slapd, over the HTTP API: accounts are correlated by
employeeNumber then mail, the rest are orphans, group memberships become assignments."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from tests.catalog.factories import add_identity
from tests.slapd import Slapd, slapd  # noqa: F401 - the fixture


def _settings(server: Slapd) -> dict[str, Any]:
    return {"url": server.url, "bind_dn": server.rootdn, "base_dn": server.suffix,
            "users_ou": "ou=people", "groups_ou": "ou=groups", "disabled_ou": "ou=disabled",
            "disable_method": "move", "pool_size": 2, "timeout_seconds": 5}


def test_aggregation_of_a_prefilled_slapd_correlates_and_reports_orphans(
        api: TestClient, admin_headers: dict[str, str],
        session_factory: sessionmaker[Session], slapd: Slapd) -> None:  # noqa: F811
    # add_identity: employee id E1 -> e1@example.com
    people = {e: add_identity(session_factory, e) for e in ("E1", "E2", "E3")}
    jdoe = slapd.add_person("jdoe", {"employeeNumber": "E1", "mail": "old@example.org"})
    msmith = slapd.add_person("msmith", {"mail": "E2@Example.com"})
    stray = slapd.add_person("backup-svc", {"description": "nobody's"})
    gone = slapd.add_person("left", {"employeeNumber": "E99"}, ou="disabled")
    slapd.add_group("vpn", [jdoe, msmith, stray])
    slapd.add_group("finance", [msmith])
    app = api.post("/applications", headers=admin_headers, json={
        "name": "Corporate directory", "connector_kind": "ldap",
        "settings": _settings(slapd), "credentials": {"bind_password": slapd.rootpw}})
    assert app.status_code == 201, app.text
    application_id = app.json()["id"]

    resp = api.post(f"/applications/{application_id}/aggregate", headers=admin_headers)

    assert resp.status_code == 201, resp.text
    run = resp.json()
    assert run["state"] == "succeeded"
    accounts = api.get("/accounts", params={"application_id": application_id, "limit": 50},
                       headers=admin_headers).json()["items"]
    found = {a["native_id"].lower(): (a["identity_id"], a["status"]) for a in accounts}
    assert found == {
        jdoe.lower(): (people["E1"], "active"),      # by employeeNumber
        msmith.lower(): (people["E2"], "active"),    # by mail, case-insensitively
        stray.lower(): (None, "active"),
        gone.lower(): (None, "disabled"),            # in the disabled OU: disabled
    }
    drift = api.get(f"/reconciliation/runs/{run['id']}/drift", headers=admin_headers).json()
    assert sorted((d["kind"], d["account_native_id"].lower()) for d in drift["items"]) == [
        ("orphan_account", stray.lower()), ("orphan_account", gone.lower())]
    assigned = api.get("/assignments", params={"source": "aggregation"},
                       headers=admin_headers).json()["items"]
    names = {e["id"]: e["name"] for e in api.get(
        "/entitlements", params={"application_id": application_id},
        headers=admin_headers).json()["items"]}
    assert sorted((a["identity_id"], names[a["entitlement_id"]]) for a in assigned) == sorted([
        (people["E1"], "vpn"), (people["E2"], "vpn"), (people["E2"], "finance")])
    # Nothing was written to the directory: the memberships are as they were.
    group = slapd.entry(f"cn=vpn,{slapd.groups}", ["member"])
    assert group is not None
    assert sorted(m.lower() for m in group.get("member")) == sorted(
        m.lower() for m in (jdoe, msmith, stray))
