"""GET /sod/violations: every identity breaking a rule, with paths, exceptions and filters."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from idgov.clock import FixedClock
from tests.catalog.factories import Api
from tests.conftest import make_token


def summary(body: dict[str, Any]) -> list[tuple[str, str, bool]]:
    return [(i["identity"]["employee_id"], i["rule"]["name"], i["mitigated"])
            for i in body["items"]]


def test_scan_lists_each_violation_with_paths_and_marks_mitigated_ones(
        api: Api, org: dict[str, Any], clock: FixedClock) -> None:
    body = api.ok("GET", "/sod/violations")
    assert body["count"] == 4
    assert body["policy_version"]
    assert body["as_of"].startswith("2026-01-15T10:00:00")
    order = sorted([("E1", org["E1"]), ("E3", org["E3"])], key=lambda p: p[1])
    assert summary(body) == [
        (who, rule, who == "E3" and rule == "Pay vs vendor")
        for who, _id in order for rule in ("Clerk vs vendor", "Pay vs vendor")]
    e1 = next(i for i in body["items"]
              if i["identity"]["id"] == org["E1"] and i["rule"]["name"] == "Pay vs vendor")
    assert e1["identity"] == {"id": org["E1"], "employee_id": "E1", "display_name": "Test E1"}
    assert e1["rule"] == {"id": org["rule"], "name": "Pay vs vendor", "severity": "critical"}
    assert e1["side_a"] == [{
        "type": "entitlement", "id": org["pay"], "name": "payments-release",
        "grants": [{"assignment_id": org["E1-clerk"], "source": "request", "path": [
            {"type": "role", "id": org["clerk"], "name": "Finance Clerk"},
            {"type": "role", "id": org["ap"], "name": "AP Processor"},
            {"type": "entitlement", "id": org["pay"], "name": "payments-release"}]}]}]
    assert e1["side_b"] == [{
        "type": "entitlement", "id": org["vendor"], "name": "vendor-write",
        "grants": [{"assignment_id": org["E1-vendor"], "source": "admin", "path": [
            {"type": "entitlement", "id": org["vendor"], "name": "vendor-write"}]}]}]
    assert (e1["mitigated"], e1["exception"]) == (False, None)
    assert e1["explanation"] == (
        "rule 'Pay vs vendor' (critical): holds payments-release "
        "(via Finance Clerk -> AP Processor -> payments-release) and also vendor-write "
        "(directly)")
    e3 = next(i for i in body["items"] if i["mitigated"])
    assert e3["exception"]["id"] == org["exception"]
    assert e3["exception"]["control"] == "monthly review"


def test_filters_narrow_the_scan(api: Api, org: dict[str, Any]) -> None:
    assert summary(api.ok("GET", "/sod/violations", params={"include_mitigated": False})) == \
        sorted([("E1", "Clerk vs vendor", False), ("E1", "Pay vs vendor", False),
                ("E3", "Clerk vs vendor", False)], key=lambda t: (org[t[0]], t[1]))
    assert summary(api.ok("GET", "/sod/violations", params={"rule_id": org["rule"]})) == \
        sorted([("E1", "Pay vs vendor", False), ("E3", "Pay vs vendor", True)],
               key=lambda t: org[t[0]])
    assert summary(api.ok("GET", "/sod/violations", params={"identity_id": org["E1"]})) == [
        ("E1", "Clerk vs vendor", False), ("E1", "Pay vs vendor", False)]
    assert api.ok("GET", "/sod/violations", params={"identity_id": org["E2"]})["items"] == []


def test_as_of_looks_at_the_past_and_the_future(api: Api, org: dict[str, Any],
                                                clock: FixedClock) -> None:
    before = (clock.now() - timedelta(days=1)).isoformat()
    assert api.ok("GET", "/sod/violations", params={"as_of": before})["count"] == 0
    after_expiry = (clock.now() + timedelta(days=120)).isoformat()
    body = api.ok("GET", "/sod/violations", params={"as_of": after_expiry,
                                                    "rule_id": org["rule"]})
    assert [i["mitigated"] for i in body["items"]] == [False, False]  # exception expired


def test_a_disabled_rule_is_not_reported(api: Api, org: dict[str, Any]) -> None:
    api.ok("PATCH", f"/sod-rules/{org['other_rule']}", json={"enabled": False})
    assert {i["rule"]["name"] for i in api.ok("GET", "/sod/violations")["items"]} == {
        "Pay vs vendor"}


def test_unknown_rule_or_identity_is_404_and_bad_input_422(api: Api,
                                                           org: dict[str, Any]) -> None:
    missing = "00000000-0000-0000-0000-000000000001"
    for params in ({"rule_id": missing}, {"identity_id": missing}):
        resp = api.client.get("/sod/violations", headers=api.headers, params=params)
        assert resp.status_code == 404, resp.text
    for params in ({"as_of": "2026-01-15T09:00:00"}, {"nope": "1"}, {"rule_id": "x"}):
        resp = api.client.get("/sod/violations", headers=api.headers, params=params)
        assert resp.status_code == 422, (params, resp.text)


def test_auditors_may_scan_people_may_not(api: Api, org: dict[str, Any],
                                          session_factory: sessionmaker[Session],
                                          clock: FixedClock,
                                          people: dict[str, dict[str, str]]) -> None:
    auditor = {"Authorization": "Bearer " + make_token(session_factory, clock, "aud",
                                                       ["auditor"])}
    assert api.client.get("/sod/violations", headers=auditor).json()["count"] == 4
    assert api.client.get("/sod/violations", headers=people[org["E1"]]).status_code == 403
    assert api.client.get("/sod/violations").status_code == 401
