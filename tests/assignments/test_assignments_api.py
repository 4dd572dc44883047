"""The /assignments API: grants with reasons, the refusals, revocation as history, row rules."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from idgov.clock import FixedClock
from idgov.models import Assignment, AuditEvent
from tests.assignments.conftest import Org, PersonHeaders

UNKNOWN = "00000000-0000-0000-0000-0000000000aa"


def _grant(client: TestClient, headers: dict[str, str], **body: object) -> dict[str, Any]:
    body.setdefault("reason", "needed for month-end close")
    resp = client.post("/assignments", json=body, headers=headers)
    assert resp.status_code == 201, resp.text
    result: dict[str, Any] = resp.json()
    return result


def _fields(resp_json: dict[str, object]) -> set[str]:
    errors = resp_json.get("errors") or []
    assert isinstance(errors, list)
    return {e["field"] for e in errors}


def test_admin_grant_is_source_admin_granted_by_caller_and_starts_now(
        client: TestClient, admin_headers: dict[str, str], org: Org, clock: FixedClock) -> None:
    made = _grant(client, admin_headers, identity_id=str(org.report), role_id=str(org.role))
    assert made["source"] == "admin"
    assert made["granted_by"] == "service_principal:test-admin"
    assert made["reason"] == "needed for month-end close"
    assert datetime.fromisoformat(str(made["valid_from"])) == clock.now()
    assert made["valid_until"] is None and made["revoked_at"] is None
    got = client.get(f"/assignments/{made['id']}", headers=admin_headers)
    assert got.status_code == 200
    assert got.json()["role_id"] == str(org.role)


def test_same_role_twice_while_active_is_409_naming_the_existing_assignment(
        client: TestClient, admin_headers: dict[str, str], org: Org) -> None:
    first = _grant(client, admin_headers, identity_id=str(org.report), role_id=str(org.role))
    again = client.post("/assignments", headers=admin_headers,
                        json={"identity_id": str(org.report), "role_id": str(org.role),
                              "reason": "again"})
    assert again.status_code == 409
    assert again.json()["assignment_id"] == first["id"]


def test_role_can_be_granted_again_after_revocation(
        client: TestClient, admin_headers: dict[str, str], org: Org) -> None:
    first = _grant(client, admin_headers, identity_id=str(org.report), role_id=str(org.role))
    assert client.post(f"/assignments/{first['id']}/revoke", json={"reason": "moved team"},
                       headers=admin_headers).status_code == 200
    second = _grant(client, admin_headers, identity_id=str(org.report), role_id=str(org.role))
    assert second["id"] != first["id"]


def test_missing_or_blank_reason_is_422(client: TestClient, admin_headers: dict[str, str],
                                        org: Org) -> None:
    for body in ({"identity_id": str(org.report), "role_id": str(org.role)},
                 {"identity_id": str(org.report), "role_id": str(org.role), "reason": "   "}):
        resp = client.post("/assignments", json=body, headers=admin_headers)
        assert resp.status_code == 422
        assert "reason" in _fields(resp.json())


def test_role_and_entitlement_together_or_neither_is_422(
        client: TestClient, admin_headers: dict[str, str], org: Org) -> None:
    both = {"identity_id": str(org.report), "role_id": str(org.role),
            "entitlement_id": str(org.entitlement), "reason": "x"}
    neither = {"identity_id": str(org.report), "reason": "x"}
    for body in (both, neither):
        resp = client.post("/assignments", json=body, headers=admin_headers)
        assert resp.status_code == 422
        assert "exactly one" in resp.text


def test_dangling_ids_are_422_naming_each_field(client: TestClient,
                                                admin_headers: dict[str, str], org: Org) -> None:
    resp = client.post("/assignments", headers=admin_headers,
                       json={"identity_id": UNKNOWN, "entitlement_id": UNKNOWN, "reason": "x"})
    assert resp.status_code == 422
    assert _fields(resp.json()) == {"identity_id", "entitlement_id"}
    resp = client.post("/assignments", headers=admin_headers,
                       json={"identity_id": str(org.report), "role_id": UNKNOWN, "reason": "x"})
    assert resp.status_code == 422
    assert _fields(resp.json()) == {"role_id"}


def test_valid_until_not_after_valid_from_is_422(client: TestClient,
                                                 admin_headers: dict[str, str], org: Org,
                                                 clock: FixedClock) -> None:
    start = clock.now() + timedelta(days=10)
    resp = client.post("/assignments", headers=admin_headers, json={
        "identity_id": str(org.report), "role_id": str(org.role), "reason": "x",
        "valid_from": start.isoformat(), "valid_until": (start - timedelta(days=1)).isoformat()})
    assert resp.status_code == 422
    assert _fields(resp.json()) == {"valid_until"}


def test_timestamps_without_a_zone_are_422(client: TestClient, admin_headers: dict[str, str],
                                           org: Org) -> None:
    resp = client.post("/assignments", headers=admin_headers, json={
        "identity_id": str(org.report), "role_id": str(org.role), "reason": "x",
        "valid_until": "2026-06-01T00:00:00"})
    assert resp.status_code == 422
    assert _fields(resp.json()) == {"valid_until"}


def test_entitlement_maximum_duration_caps_valid_until(
        client: TestClient, admin_headers: dict[str, str], org: Org, clock: FixedClock) -> None:
    too_long = client.post("/assignments", headers=admin_headers, json={
        "identity_id": str(org.report), "entitlement_id": str(org.capped_entitlement),
        "reason": "incident", "valid_until": (clock.now() + timedelta(days=31)).isoformat()})
    assert too_long.status_code == 422
    assert _fields(too_long.json()) == {"valid_until"}
    assert "30 days" in too_long.json()["detail"]
    defaulted = _grant(client, admin_headers, identity_id=str(org.report),
                       entitlement_id=str(org.capped_entitlement), reason="incident")
    assert str(defaulted["valid_until"]).startswith("2026-02-14T09:00:00")


def test_terminated_identity_cannot_get_new_access(client: TestClient,
                                                   admin_headers: dict[str, str],
                                                   org: Org) -> None:
    resp = client.post("/assignments", headers=admin_headers,
                       json={"identity_id": str(org.leaver), "role_id": str(org.role),
                             "reason": "x"})
    assert resp.status_code == 409
    assert "terminated" in resp.json()["detail"]


def test_revoke_end_dates_and_keeps_the_row_as_history(
        client: TestClient, admin_headers: dict[str, str], org: Org, clock: FixedClock,
        session_factory: sessionmaker[Session]) -> None:
    made = _grant(client, admin_headers, identity_id=str(org.report), role_id=str(org.role))
    clock.advance(timedelta(days=3))
    resp = client.post(f"/assignments/{made['id']}/revoke", headers=admin_headers,
                       json={"reason": "no longer in accounts payable"})
    assert resp.status_code == 200
    ended = resp.json()
    assert ended["revoked_at"].startswith("2026-01-18T09:00:00")
    assert ended["revoked_by"] == "service_principal:test-admin"
    assert ended["revoke_reason"] == "no longer in accounts payable"
    assert ended["valid_from"] == made["valid_from"]

    listed = client.get("/assignments", params={"identity_id": str(org.report)},
                        headers=admin_headers).json()["items"]
    assert [a["id"] for a in listed] == [made["id"]]
    active = client.get("/assignments", params={"identity_id": str(org.report), "active": True},
                        headers=admin_headers).json()["items"]
    assert active == []
    inactive = client.get("/assignments", params={"identity_id": str(org.report),
                                                  "active": False},
                          headers=admin_headers).json()["items"]
    assert [a["id"] for a in inactive] == [made["id"]]

    with session_factory() as session:
        events = session.scalars(select(AuditEvent).where(AuditEvent.object_id == made["id"])
                                 .order_by(AuditEvent.seq)).all()
    assert [e.action for e in events] == ["assignment.grant", "assignment.revoke"]
    assert all(e.hash is not None for e in events)
    assert events[1].before is not None and events[1].before["revoked_at"] is None
    assert events[1].after is not None
    assert events[1].after["revoke_reason"] == "no longer in accounts payable"


def test_revoking_an_ended_assignment_is_409(client: TestClient, admin_headers: dict[str, str],
                                             org: Org, clock: FixedClock) -> None:
    made = _grant(client, admin_headers, identity_id=str(org.report), role_id=str(org.role))
    url = f"/assignments/{made['id']}/revoke"
    assert client.post(url, json={"reason": "a"}, headers=admin_headers).status_code == 200
    assert client.post(url, json={"reason": "b"}, headers=admin_headers).status_code == 409

    expiring = _grant(client, admin_headers, identity_id=str(org.report),
                      entitlement_id=str(org.entitlement),
                      valid_until=(clock.now() + timedelta(days=1)).isoformat())
    clock.advance(timedelta(days=2))
    resp = client.post(f"/assignments/{expiring['id']}/revoke", json={"reason": "c"},
                       headers=admin_headers)
    assert resp.status_code == 409
    assert "expired" in resp.json()["detail"]


def test_revoke_needs_a_reason_and_an_existing_assignment(
        client: TestClient, admin_headers: dict[str, str], org: Org) -> None:
    made = _grant(client, admin_headers, identity_id=str(org.report), role_id=str(org.role))
    resp = client.post(f"/assignments/{made['id']}/revoke", json={}, headers=admin_headers)
    assert resp.status_code == 422
    assert _fields(resp.json()) == {"reason"}
    assert client.post(f"/assignments/{UNKNOWN}/revoke", json={"reason": "x"},
                       headers=admin_headers).status_code == 404


def test_list_filters_by_target_and_source(client: TestClient, admin_headers: dict[str, str],
                                           org: Org) -> None:
    a = _grant(client, admin_headers, identity_id=str(org.report), role_id=str(org.role))
    b = _grant(client, admin_headers, identity_id=str(org.outsider),
               entitlement_id=str(org.entitlement))

    def ids(**params: str) -> list[str]:
        resp = client.get("/assignments", params=params, headers=admin_headers)
        assert resp.status_code == 200, resp.text
        return [x["id"] for x in resp.json()["items"]]

    assert ids(role_id=str(org.role)) == [a["id"]]
    assert ids(entitlement_id=str(org.entitlement)) == [b["id"]]
    assert ids(identity_id=str(org.outsider)) == [b["id"]]
    assert sorted(ids(source="admin")) == sorted([a["id"], b["id"]])
    assert ids(source="birthright") == []
    assert client.get("/assignments", params={"colour": "red"},
                      headers=admin_headers).status_code == 422


def test_future_dated_grant_is_not_active_until_it_starts(
        client: TestClient, admin_headers: dict[str, str], org: Org, clock: FixedClock) -> None:
    made = _grant(client, admin_headers, identity_id=str(org.report), role_id=str(org.role),
                  valid_from=(clock.now() + timedelta(days=7)).isoformat())
    params: dict[str, str | bool] = {"identity_id": str(org.report), "active": True}
    assert client.get("/assignments", params=params, headers=admin_headers).json()["items"] == []
    clock.advance(timedelta(days=8))
    items = client.get("/assignments", params=params, headers=admin_headers).json()["items"]
    assert [x["id"] for x in items] == [made["id"]]


def test_manager_sees_direct_and_indirect_reports_assignments_only(
        client: TestClient, admin_headers: dict[str, str], org: Org,
        person_headers: PersonHeaders) -> None:
    of_report = _grant(client, admin_headers, identity_id=str(org.report),
                       role_id=str(org.other_role))
    of_outsider = _grant(client, admin_headers, identity_id=str(org.outsider),
                         role_id=str(org.other_role))
    of_manager = _grant(client, admin_headers, identity_id=str(org.manager),
                        role_id=str(org.other_role))

    manager = person_headers(org.manager, ["requester", "manager"])
    seen = [a["id"] for a in client.get("/assignments", headers=manager).json()["items"]]
    assert seen == [of_report["id"]]
    assert client.get(f"/assignments/{of_report['id']}", headers=manager).status_code == 200
    assert client.get(f"/assignments/{of_outsider['id']}", headers=manager).status_code == 404

    ceo = person_headers(org.ceo, ["requester", "manager"])
    seen = [a["id"] for a in client.get("/assignments", headers=ceo).json()["items"]]
    assert sorted(seen) == sorted([of_report["id"], of_outsider["id"], of_manager["id"]])
    assert client.get(f"/assignments/{of_report['id']}", headers=ceo).status_code == 200


def test_owner_sees_assignments_of_what_they_own_only(
        client: TestClient, admin_headers: dict[str, str], org: Org,
        person_headers: PersonHeaders) -> None:
    owned_role = _grant(client, admin_headers, identity_id=str(org.outsider),
                        role_id=str(org.role))
    owned_ent = _grant(client, admin_headers, identity_id=str(org.report),
                       entitlement_id=str(org.entitlement))
    not_owned = _grant(client, admin_headers, identity_id=str(org.report),
                       role_id=str(org.other_role))
    owner = person_headers(org.owner, ["requester", "owner"])
    seen = [a["id"] for a in client.get("/assignments", headers=owner).json()["items"]]
    assert sorted(seen) == sorted([owned_role["id"], owned_ent["id"]])
    assert client.get(f"/assignments/{owned_ent['id']}", headers=owner).status_code == 200
    assert client.get(f"/assignments/{not_owned['id']}", headers=owner).status_code == 404


def test_people_cannot_write_and_plain_requesters_cannot_read(
        client: TestClient, org: Org, person_headers: PersonHeaders) -> None:
    requester = person_headers(org.report, ["requester"])
    assert client.get("/assignments", headers=requester).status_code == 403
    manager = person_headers(org.manager, ["requester", "manager"])
    resp = client.post("/assignments", headers=manager,
                       json={"identity_id": str(org.report), "role_id": str(org.role),
                             "reason": "x"})
    assert resp.status_code == 403


def test_assignment_created_through_the_api_is_in_the_database(
        client: TestClient, admin_headers: dict[str, str], org: Org,
        session_factory: sessionmaker[Session]) -> None:
    made = _grant(client, admin_headers, identity_id=str(org.report), role_id=str(org.role))
    with session_factory() as session:
        row = session.scalars(select(Assignment)).one()
    assert str(row.id) == made["id"]
    assert row.source == "admin"
