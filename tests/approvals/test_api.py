"""Through HTTP: the inbox, delegations (by the delegator themself), authority levels (by an
administrator)."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient

from idgov.clock import FixedClock
from idgov.policy.decision import ApprovalNeed
from tests.approvals.conftest import Lines, Org
from tests.conftest import PersonHeaders

MANAGER = ApprovalNeed(stage=1, kind="manager", reason="Manager approval")


def _iso(clock: FixedClock, delta: timedelta) -> str:
    return (clock.now() + delta).isoformat()


def _delegation(org: Org, clock: FixedClock, **extra: Any) -> dict[str, Any]:
    return {"delegate_id": str(org.deputy), "starts_at": _iso(clock, timedelta(0)),
            "ends_at": _iso(clock, timedelta(days=7)), "max_risk": "medium",
            "reason": "holiday", **extra}


def test_delegation_lifecycle(client: TestClient, people: PersonHeaders,
                              admin_headers: dict[str, str], org: Org, clock: FixedClock,
                              lines: Lines) -> None:
    manager = people[str(org.manager)]
    resp = client.post("/delegations", json=_delegation(org, clock), headers=manager)
    assert resp.status_code == 201, resp.text
    created = resp.json()
    assert (created["delegator_id"], created["delegate_id"], created["max_risk"],
            created["revoked_at"]) == (str(org.manager), str(org.deputy), "medium", None)
    assert lines.audit(uuid.UUID(created["id"])) == ["delegation.create"]
    assert lines.notifications("delegation.created") == [(org.deputy, created["id"])]

    def listed(headers: dict[str, str], **params: str) -> list[str]:
        resp = client.get("/delegations", headers=headers, params=params)
        assert resp.status_code == 200, resp.text
        return [d["id"] for d in resp.json()["items"]]

    assert listed(manager) == [created["id"]]
    assert listed(people[str(org.deputy)]) == [created["id"]]
    assert listed(people[str(org.outsider)]) == []
    assert listed(admin_headers) == [created["id"]]
    assert listed(admin_headers, active="false") == []
    # the delegate now has the manager's inbox
    line_id = lines.open([MANAGER])
    inbox = client.get("/approvals", headers=people[str(org.deputy)]).json()["items"]
    assert [i["step"]["id"] for i in inbox] == [str(lines.step(line_id, 1).id)]

    url = f"/delegations/{created['id']}/revoke"
    assert client.post(url, headers=people[str(org.outsider)]).status_code == 404
    assert client.post(url, headers=people[str(org.deputy)]).status_code == 403
    resp = client.post(url, headers=manager)
    assert resp.status_code == 200, resp.text
    assert resp.json()["revoked_at"] is not None
    assert client.post(url, headers=manager).status_code == 409
    assert lines.audit(uuid.UUID(created["id"])) == ["delegation.create", "delegation.revoke"]
    assert client.get("/approvals", headers=people[str(org.deputy)]).json()["items"] == []


def test_invalid_delegations_are_422(client: TestClient, people: PersonHeaders, org: Org,
                                     clock: FixedClock, lines: Lines) -> None:
    manager = people[str(org.manager)]
    cases = [
        ({"delegate_id": str(org.manager)}, "delegate_id"),
        ({"delegate_id": str(uuid.uuid4())}, "delegate_id"),
        ({"delegate_id": str(org.leaver)}, "delegate_id"),
        ({"ends_at": _iso(clock, timedelta(0))}, "ends_at"),
        ({"starts_at": _iso(clock, timedelta(days=-3)),
          "ends_at": _iso(clock, timedelta(days=-1))}, "ends_at"),
    ]
    for extra, field in cases:
        resp = client.post("/delegations", json=_delegation(org, clock, **extra),
                           headers=manager)
        assert resp.status_code == 422, (extra, resp.text)
        assert [e["field"] for e in resp.json()["errors"]] == [field], extra
    for extra in ({"max_risk": "extreme"}, {"delegator_id": str(org.bob)}):
        resp = client.post("/delegations", json=_delegation(org, clock, **extra),
                           headers=manager)
        assert resp.status_code == 422, extra
    assert client.get("/delegations", headers=manager).json()["items"] == []


def test_administrator_cannot_delegate_for_someone(client: TestClient,
                                                   admin_headers: dict[str, str], org: Org,
                                                   clock: FixedClock) -> None:
    resp = client.post("/delegations", json=_delegation(org, clock), headers=admin_headers)
    assert resp.status_code == 403


def test_authorities_by_an_administrator_only(client: TestClient, people: PersonHeaders,
                                              admin_headers: dict[str, str], org: Org,
                                              lines: Lines) -> None:
    url = f"/approval-authorities/{org.manager}"
    person = people[str(org.manager)]
    assert client.put(url, json={"max_risk": "high"}, headers=person).status_code == 403
    assert client.get("/approval-authorities", headers=person).status_code == 403
    resp = client.put(url, json={"max_risk": "high"}, headers=admin_headers)
    assert resp.status_code == 200, resp.text
    first = resp.json()
    assert (first["identity_id"], first["max_risk"]) == (str(org.manager), "high")
    resp = client.put(url, json={"max_risk": "critical"}, headers=admin_headers)
    assert resp.json()["id"] == first["id"] and resp.json()["max_risk"] == "critical"
    listed = client.get("/approval-authorities", headers=admin_headers).json()["items"]
    assert [(a["identity_id"], a["max_risk"]) for a in listed] == [(str(org.manager),
                                                                    "critical")]
    assert client.put(url, json={"max_risk": "extreme"},
                      headers=admin_headers).status_code == 422
    assert client.put(f"/approval-authorities/{uuid.uuid4()}", json={"max_risk": "low"},
                      headers=admin_headers).status_code == 404
    assert client.delete(url, headers=person).status_code == 403
    assert client.delete(url, headers=admin_headers).status_code == 204
    assert client.delete(url, headers=admin_headers).status_code == 404
    assert client.get("/approval-authorities", headers=admin_headers).json()["items"] == []
    assert lines.audit(uuid.UUID(first["id"])) == [
        "approval_authority.set", "approval_authority.set", "approval_authority.remove"]


def test_inbox_and_step_detail(client: TestClient, people: PersonHeaders,
                               admin_headers: dict[str, str], org: Org, lines: Lines) -> None:
    line_id = lines.open([MANAGER], risk="high")
    step_id = str(lines.step(line_id, 1).id)
    items = client.get("/approvals", headers=people[str(org.manager)]).json()["items"]
    assert [i["step"]["id"] for i in items] == [step_id]
    item = items[0]
    assert item["line"]["item_name"] == "Payables"
    assert item["line"]["risk"] == "high"
    assert item["line"]["decision"] == {"risk": "high", "violations": []}
    assert item["request"]["beneficiary_id"] == str(org.alice)
    assert item["request"]["form_data"] == {"justification": "month-end close"}
    assert item["step"]["approvers"][0]["identity_id"] == str(org.manager)
    assert item["due_at"] == item["step"]["due_at"]
    assert client.get("/approvals", headers=people[str(org.alice)]).json()["items"] == []
    # readers see all and filter
    all_items = client.get("/approvals", headers=admin_headers,
                           params={"identity_id": str(org.manager)}).json()["items"]
    assert [i["step"]["id"] for i in all_items] == [step_id]
    assert client.get("/approvals", headers=admin_headers,
                      params={"state": "approved"}).json()["items"] == []
    # the detail: approvers and readers; others do not see it exists
    assert client.get(f"/approvals/{step_id}", headers=people[str(org.manager)]).status_code \
        == 200
    assert client.get(f"/approvals/{step_id}", headers=admin_headers).status_code == 200
    for who in (org.alice, org.outsider):
        assert client.get(f"/approvals/{step_id}", headers=people[str(who)]).status_code == 404


def test_decision_through_http(client: TestClient, people: PersonHeaders, org: Org,
                               lines: Lines) -> None:
    line_id = lines.open([MANAGER, ApprovalNeed(stage=2, kind="owner", reason="Owner")])
    first, second = lines.steps(line_id)
    url = f"/approvals/{first.id}/decision"
    manager = people[str(org.manager)]
    assert client.post(url, json={"decision": "approve"},
                       headers=people[str(org.outsider)]).status_code == 403
    assert client.post(url, json={"decision": "reject"}, headers=manager).status_code == 422
    assert client.post(url, json={"decision": "maybe"}, headers=manager).status_code == 422
    assert client.post(f"/approvals/{uuid.uuid4()}/decision", json={"decision": "approve"},
                       headers=manager).status_code == 404
    resp = client.post(url, json={"decision": "approve", "comment": "ok"}, headers=manager)
    assert resp.status_code == 200, resp.text
    assert resp.json()["id"] == _request_id(lines, line_id)
    assert client.post(url, json={"decision": "approve"}, headers=manager).status_code == 409
    resp = client.post(f"/approvals/{second.id}/decision",
                       json={"decision": "reject", "comment": "not for this team"},
                       headers=people[str(org.owner)])
    assert resp.status_code == 200, resp.text
    assert [line["state"] for line in resp.json()["lines"]] == ["rejected"]
    assert [s.state for s in lines.steps(line_id)] == ["approved", "rejected"]


def _request_id(lines: Lines, line_id: uuid.UUID) -> str:
    from idgov.models.requests import RequestLine

    with lines.factory() as session:
        line = session.get(RequestLine, line_id)
        assert line is not None
        return str(line.request_id)
