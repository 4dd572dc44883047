"""The /sod-rules API: rules with two sides, exceptions granted and revoked."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from idgov.clock import FixedClock
from tests.catalog.factories import Api, add_identity, audit_actions
from tests.conftest import make_token


@pytest.fixture
def parts(api: Api) -> dict[str, str]:
    return {"pay": api.entitlement("payments-release"), "vendor": api.entitlement("vendor-write"),
            "ap": api.role("AP Processor")}


def make_rule(api: Api, parts: dict[str, str], **extra: Any) -> dict[str, Any]:
    body = {"name": "Pay vs vendor", "severity": "critical",
            "side_a": [{"entitlement_id": parts["pay"]}, {"role_id": parts["ap"]}],
            "side_b": [{"entitlement_id": parts["vendor"]}], **extra}
    result: dict[str, Any] = api.ok("POST", "/sod-rules", 201, json=body)
    return result


def test_create_read_update_delete_rule(api: Api, parts: dict[str, str],
                                        session_factory: sessionmaker[Session]) -> None:
    rule = make_rule(api, parts)
    assert rule["side_a"] == [
        {"type": "entitlement", "id": parts["pay"], "name": "payments-release"},
        {"type": "role", "id": parts["ap"], "name": "AP Processor"}]
    assert rule["side_b"] == [{"type": "entitlement", "id": parts["vendor"],
                               "name": "vendor-write"}]
    assert api.ok("GET", f"/sod-rules/{rule['id']}") == rule
    patched = api.ok("PATCH", f"/sod-rules/{rule['id']}",
                     json={"severity": "high", "side_a": [{"role_id": parts["ap"]}]})
    assert patched["severity"] == "high"
    assert [i["name"] for i in patched["side_a"]] == ["AP Processor"]
    assert patched["side_b"] == rule["side_b"]
    listed = api.ok("GET", "/sod-rules", params={"severity": "high"})["items"]
    assert [r["id"] for r in listed] == [rule["id"]]
    api.ok("DELETE", f"/sod-rules/{rule['id']}", 204)
    assert api.client.get(f"/sod-rules/{rule['id']}", headers=api.headers).status_code == 404
    assert audit_actions(session_factory, rule["id"]) == [
        "sod_rule.create", "sod_rule.update", "sod_rule.delete"]


def test_rule_sides_are_validated(api: Api, parts: dict[str, str]) -> None:
    missing = "00000000-0000-0000-0000-000000000077"
    resp = api.client.post("/sod-rules", headers=api.headers, json={
        "name": "bad", "side_a": [{"role_id": missing}],
        "side_b": [{"entitlement_id": parts["pay"]}, {"entitlement_id": parts["pay"]}]})
    assert resp.status_code == 422
    assert [e["field"] for e in resp.json()["errors"]] == ["side_a.0.role_id",
                                                          "side_b.1.entitlement_id"]
    resp = api.client.post("/sod-rules", headers=api.headers, json={
        "name": "both", "side_a": [{"entitlement_id": parts["pay"]}],
        "side_b": [{"entitlement_id": parts["pay"]}]})
    assert resp.status_code == 422
    assert "on both sides" in resp.json()["errors"][0]["message"]
    resp = api.client.post("/sod-rules", headers=api.headers, json={
        "name": "neither", "side_a": [{}], "side_b": [{"entitlement_id": parts["pay"]}]})
    assert resp.status_code == 422
    resp = api.client.post("/sod-rules", headers=api.headers, json={
        "name": "empty", "side_a": [], "side_b": [{"entitlement_id": parts["pay"]}]})
    assert resp.status_code == 422


def test_duplicate_rule_name_is_409(api: Api, parts: dict[str, str]) -> None:
    make_rule(api, parts)
    resp = api.client.post("/sod-rules", headers=api.headers, json={
        "name": "Pay vs vendor", "side_a": [{"entitlement_id": parts["pay"]}],
        "side_b": [{"entitlement_id": parts["vendor"]}]})
    assert resp.status_code == 409


def test_a_role_named_by_a_rule_cannot_be_deleted(api: Api, parts: dict[str, str]) -> None:
    make_rule(api, parts)
    resp = api.client.delete(f"/roles/{parts['ap']}", headers=api.headers)
    assert resp.status_code == 409
    assert resp.json()["sod_rule_items"] == 1


def test_grant_list_and_revoke_an_exception(api: Api, parts: dict[str, str], clock: FixedClock,
                                            session_factory: sessionmaker[Session]) -> None:
    rule = make_rule(api, parts)
    person, approver = add_identity(session_factory, "E1"), add_identity(session_factory, "M1")
    expires = (clock.now() + timedelta(days=90)).isoformat()
    url = f"/sod-rules/{rule['id']}/exceptions"
    granted = api.ok("POST", url, 201, json={"identity_id": person, "approver_id": approver,
                                             "control": "monthly payment review",
                                             "expires_at": expires})
    assert granted["revoked_at"] is None
    assert datetime.fromisoformat(granted["expires_at"]) == clock.now() + timedelta(days=90)
    again = api.client.post(url, headers=api.headers, json={
        "identity_id": person, "approver_id": approver, "control": "x", "expires_at": expires})
    assert again.status_code == 409
    assert [e["id"] for e in api.ok("GET", url, params={"active": True})["items"]] == [
        granted["id"]]
    revoked = api.ok("POST", f"{url}/{granted['id']}/revoke", json={"reason": "moved team"})
    assert datetime.fromisoformat(revoked["revoked_at"]) == clock.now()
    assert revoked["revoke_reason"] == "moved team"
    assert api.ok("GET", url, params={"active": True})["items"] == []
    assert api.client.post(f"{url}/{granted['id']}/revoke", headers=api.headers,
                           json={"reason": "twice"}).status_code == 409
    assert audit_actions(session_factory, granted["id"]) == ["sod_exception.grant",
                                                             "sod_exception.revoke"]
    # The rule is evidence now: deleting it is refused.
    resp = api.client.delete(f"/sod-rules/{rule['id']}", headers=api.headers)
    assert (resp.status_code, resp.json()["exceptions"]) == (409, 1)


def test_exception_is_refused_when_the_rule_allows_none(
        api: Api, parts: dict[str, str], clock: FixedClock,
        session_factory: sessionmaker[Session]) -> None:
    rule = make_rule(api, parts, exception_allowed=False)
    person, approver = add_identity(session_factory, "E1"), add_identity(session_factory, "M1")
    resp = api.client.post(f"/sod-rules/{rule['id']}/exceptions", headers=api.headers, json={
        "identity_id": person, "approver_id": approver, "control": "x",
        "expires_at": (clock.now() + timedelta(days=1)).isoformat()})
    assert resp.status_code == 409
    assert "does not allow exceptions" in resp.json()["detail"]


def test_exception_needs_a_distinct_approver_and_a_future_expiry(
        api: Api, parts: dict[str, str], clock: FixedClock,
        session_factory: sessionmaker[Session]) -> None:
    rule = make_rule(api, parts)
    person = add_identity(session_factory, "E1")
    resp = api.client.post(f"/sod-rules/{rule['id']}/exceptions", headers=api.headers, json={
        "identity_id": person, "approver_id": person, "control": "x",
        "expires_at": (clock.now() - timedelta(days=1)).isoformat()})
    assert resp.status_code == 422
    assert [e["field"] for e in resp.json()["errors"]] == ["approver_id", "expires_at"]


def test_sod_rules_need_sod_capabilities(client: TestClient, api: Api, parts: dict[str, str],
                                         session_factory: sessionmaker[Session],
                                         clock: FixedClock) -> None:
    auditor = {"Authorization": "Bearer " + make_token(session_factory, clock, "aud",
                                                       ["auditor"])}
    rule = make_rule(api, parts)
    assert client.get(f"/sod-rules/{rule['id']}", headers=auditor).status_code == 200
    assert client.patch(f"/sod-rules/{rule['id']}", headers=auditor,
                        json={"enabled": False}).status_code == 403
