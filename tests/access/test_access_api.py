"""GET /identities/{id}/access: every entitlement with every path, now and at past instants."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from idgov.clock import FixedClock
from tests.catalog.factories import Api, add_assignment, add_identity


def paths(access: dict[str, Any]) -> dict[str, list[str]]:
    """entitlement name -> each grant's path as 'type:name -> ...'."""
    return {e["entitlement"]["name"]: [" -> ".join(f"{s['type']}:{s['name']}" for s in g["path"])
                                       for g in e["grants"]]
            for e in access["entitlements"]}


def build_finance(api: Api) -> dict[str, str]:
    """Finance Clerk (business) includes AP Processor (technical) which grants ap-write."""
    ids = {"clerk": api.role("Finance Clerk"), "ap": api.role("AP Processor", kind="technical"),
           "ap-write": api.entitlement("ap-write", risk="high"),
           "gl-read": api.entitlement("gl-read")}
    api.include(ids["clerk"], ids["ap"])
    api.grant(ids["ap"], ids["ap-write"])
    return ids


def test_business_role_through_technical_role_shows_the_three_step_path(
        api: Api, session_factory: sessionmaker[Session], clock: FixedClock) -> None:
    ids = build_finance(api)
    person = add_identity(session_factory, "E1")
    assignment = add_assignment(session_factory, identity_id=person, role_id=ids["clerk"],
                                valid_from=clock.now(), source="request")
    access = api.ok("GET", f"/identities/{person}/access")
    assert access["identity_id"] == person
    (held,) = access["entitlements"]
    assert held["entitlement"] == {"id": ids["ap-write"], "name": "ap-write",
                                   "application_id": api.application_id,
                                   "native_id": "cn=ap-write", "risk": "high",
                                   "privileged": False}
    assert held["grants"] == [{"assignment_id": assignment, "source": "request", "path": [
        {"type": "role", "id": ids["clerk"], "name": "Finance Clerk"},
        {"type": "role", "id": ids["ap"], "name": "AP Processor"},
        {"type": "entitlement", "id": ids["ap-write"], "name": "ap-write"}]}]
    assert [(r["role"]["name"], len(r["grants"][0]["path"])) for r in access["roles"]] == [
        ("AP Processor", 2), ("Finance Clerk", 1)]
    assert access["sod_violations"] == []


def test_directly_assigned_entitlement_shows_a_one_step_path(
        api: Api, session_factory: sessionmaker[Session], clock: FixedClock) -> None:
    ids = build_finance(api)
    person = add_identity(session_factory, "E1")
    add_assignment(session_factory, identity_id=person, entitlement_id=ids["gl-read"],
                   valid_from=clock.now())
    add_assignment(session_factory, identity_id=person, role_id=ids["clerk"],
                   valid_from=clock.now())
    add_assignment(session_factory, identity_id=person, entitlement_id=ids["ap-write"],
                   valid_from=clock.now())
    assert paths(api.ok("GET", f"/identities/{person}/access")) == {
        "ap-write": ["entitlement:ap-write",
                     "role:Finance Clerk -> role:AP Processor -> entitlement:ap-write"],
        "gl-read": ["entitlement:gl-read"],
    }


def test_an_end_dated_link_no_longer_grants_and_as_of_reconstructs_the_past(
        api: Api, session_factory: sessionmaker[Session], clock: FixedClock) -> None:
    ids = build_finance(api)
    person = add_identity(session_factory, "E1")
    add_assignment(session_factory, identity_id=person, role_id=ids["clerk"],
                   valid_from=clock.now())
    granted_at = clock.now()
    clock.advance(timedelta(days=10))
    api.ok("DELETE", f"/roles/{ids['clerk']}/included-roles/{ids['ap']}",
           params={"reason": "AP moved to shared services"})
    clock.advance(timedelta(days=1))

    now = api.ok("GET", f"/identities/{person}/access")
    assert now["entitlements"] == []
    assert [r["role"]["name"] for r in now["roles"]] == ["Finance Clerk"]

    then = granted_at + timedelta(days=5)
    past = api.ok("GET", f"/identities/{person}/access", params={"as_of": then.isoformat()})
    assert paths(past) == {
        "ap-write": ["role:Finance Clerk -> role:AP Processor -> entitlement:ap-write"]}
    before_anything = granted_at - timedelta(seconds=1)
    assert api.ok("GET", f"/identities/{person}/access",
                  params={"as_of": before_anything.isoformat()})["roles"] == []


def test_revoked_and_expired_assignments_grant_only_inside_their_window(
        api: Api, session_factory: sessionmaker[Session], clock: FixedClock) -> None:
    ids = build_finance(api)
    person = add_identity(session_factory, "E1")
    start = clock.now() - timedelta(days=30)
    add_assignment(session_factory, identity_id=person, entitlement_id=ids["gl-read"],
                   valid_from=start, revoked_at=clock.now() - timedelta(days=1))
    add_assignment(session_factory, identity_id=person, entitlement_id=ids["ap-write"],
                   valid_from=start, valid_until=clock.now() - timedelta(days=2))
    assert paths(api.ok("GET", f"/identities/{person}/access")) == {}
    past = (clock.now() - timedelta(days=3)).isoformat()
    assert sorted(paths(api.ok("GET", f"/identities/{person}/access",
                               params={"as_of": past}))) == ["ap-write", "gl-read"]


def test_sod_violation_is_explained_with_paths_and_marked_mitigated_by_an_exception(
        api: Api, session_factory: sessionmaker[Session], clock: FixedClock) -> None:
    ids = build_finance(api)
    vendor = api.entitlement("vendor-write")
    rule = api.ok("POST", "/sod-rules", 201, json={
        "name": "AP vs vendor", "severity": "critical",
        "side_a": [{"role_id": ids["ap"]}], "side_b": [{"entitlement_id": vendor}]})
    person, manager = add_identity(session_factory, "E1"), add_identity(session_factory, "M1")
    add_assignment(session_factory, identity_id=person, role_id=ids["clerk"],
                   valid_from=clock.now())
    add_assignment(session_factory, identity_id=person, entitlement_id=vendor,
                   valid_from=clock.now())
    (violation,) = api.ok("GET", f"/identities/{person}/access")["sod_violations"]
    assert violation["rule"] == {"id": rule["id"], "name": "AP vs vendor",
                                 "severity": "critical"}
    assert [(i["name"], [s["name"] for s in i["grants"][0]["path"]])
            for i in violation["side_a"]] == [("AP Processor", ["Finance Clerk",
                                                                "AP Processor"])]
    assert [i["name"] for i in violation["side_b"]] == ["vendor-write"]
    assert violation["mitigated"] is False
    assert violation["explanation"] == (
        "rule 'AP vs vendor' (critical): holds AP Processor (via Finance Clerk -> AP Processor)"
        " and also vendor-write (directly)")

    exception = api.ok("POST", f"/sod-rules/{rule['id']}/exceptions", 201, json={
        "identity_id": person, "approver_id": manager, "control": "dual control on payments",
        "expires_at": (clock.now() + timedelta(days=30)).isoformat()})
    (violation,) = api.ok("GET", f"/identities/{person}/access")["sod_violations"]
    assert violation["mitigated"] is True
    assert violation["exception"]["id"] == exception["id"]


def test_a_person_sees_their_own_and_their_reports_access_and_nobody_elses(
        api: Api, session_factory: sessionmaker[Session],
        person_headers: dict[str, dict[str, str]]) -> None:
    manager = add_identity(session_factory, "M1")
    report = add_identity(session_factory, "E1", manager_id=manager)
    stranger = add_identity(session_factory, "E2")
    client = api.client
    assert client.get(f"/identities/{manager}/access",
                      headers=person_headers[manager]).status_code == 200
    assert client.get(f"/identities/{report}/access",
                      headers=person_headers[manager]).status_code == 200
    assert client.get(f"/identities/{manager}/access",
                      headers=person_headers[report]).status_code == 404
    resp = client.get(f"/identities/{stranger}/access", headers=person_headers[manager])
    assert resp.status_code == 404
    assert client.get(f"/identities/{report}/access").status_code == 401


def test_unknown_identity_and_naive_as_of_are_refused(
        api: Api, session_factory: sessionmaker[Session]) -> None:
    person = add_identity(session_factory, "E1")
    missing = "00000000-0000-0000-0000-0000000000aa"
    assert api.client.get(f"/identities/{missing}/access",
                          headers=api.headers).status_code == 404
    resp = api.client.get(f"/identities/{person}/access", headers=api.headers,
                          params={"as_of": "2026-01-01T00:00:00"})
    assert resp.status_code == 422
    assert resp.json()["errors"][0]["field"] == "as_of"
