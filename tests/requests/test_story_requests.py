"""Requests as their people see them: who may see one, a manager asking for a report,
drafts, cancelling."""

from __future__ import annotations

from tests.requests.conftest import World, waiting


def test_who_sees_a_request(world: World) -> None:
    req = world.ask("alice", "ledger")
    for who, status in (("alice", 200), ("manager", 200), ("owner", 404), ("bob", 404),
                        ("outsider", 404)):
        assert world.get(who, req["id"]).status_code == status, who
    assert world.client.get(f"/requests/{req['id']}", headers=world.admin).status_code == 200

    def listed(who: str) -> list[str]:
        resp = world.client.get("/requests", headers=world.as_(who))
        assert resp.status_code == 200, resp.text
        return [r["number"] for r in resp.json()["items"]]

    assert listed("alice") == ["REQ-2026-000001"]
    assert listed("bob") == []
    everything = world.client.get("/requests", headers=world.admin,
                                  params={"state": "pending_approval"}).json()["items"]
    assert [r["number"] for r in everything] == ["REQ-2026-000001"]


def test_a_manager_asks_for_a_report_and_cannot_approve_it(world: World) -> None:
    req = world.ask("manager", "ledger", beneficiary_id=world.ids["alice"])
    assert (req["requester_id"], req["beneficiary_id"]) == (world.ids["manager"],
                                                             world.ids["alice"])
    # The requester never approves: the manager's step goes to the next manager up.
    step = waiting(req["lines"][0])
    assert step["approvers"] == [world.ids["director"]]
    assert world.get("alice", req["id"]).status_code == 200
    # A director two levels up may also ask.
    world.ask("director", "wiki", beneficiary_id=world.ids["bob"])


def test_a_draft_is_submitted_later(world: World) -> None:
    draft = world.ask("alice", "ledger", submit=False, form={})
    assert (draft["state"], draft["number"], draft["submitted_at"]) == (
        "draft", "REQ-2026-000001", None)
    assert draft["lines"][0]["steps"] == []
    assert world.outbox() == []
    # The form is checked on submission.
    resp = world.client.post(f"/requests/{draft['id']}/submit", headers=world.as_("alice"))
    assert resp.status_code == 422
    assert [e["field"] for e in resp.json()["errors"]] == ["form_data.justification"]

    draft = world.ask("alice", "wiki", submit=False)
    resp = world.client.post(f"/requests/{draft['id']}/submit", headers=world.as_("bob"))
    assert resp.status_code == 404
    resp = world.client.post(f"/requests/{draft['id']}/submit", headers=world.as_("alice"))
    assert resp.status_code == 200, resp.text
    assert resp.json()["state"] == "provisioning"
    again = world.client.post(f"/requests/{draft['id']}/submit", headers=world.as_("alice"))
    assert again.status_code == 409


def test_cancelling_closes_pending_lines_and_their_steps(world: World) -> None:
    req = world.ask("alice", "ledger", "wiki")
    assert [ln["state"] for ln in req["lines"]] == ["pending_approval", "provisioning"]
    url = f"/requests/{req['id']}/cancel"
    assert world.client.post(url, headers=world.as_("manager"),
                             json={"reason": "x"}).status_code == 403
    assert world.client.post(url, headers=world.as_("bob"),
                             json={"reason": "x"}).status_code == 404
    mail = world.outbox()
    resp = world.client.post(url, headers=world.as_("alice"), json={"reason": "Changed my mind"})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    # The line already granted stays; the request is partly done.
    assert [ln["state"] for ln in body["lines"]] == ["cancelled", "provisioning"]
    assert [s["state"] for s in body["lines"][0]["steps"]] == ["cancelled", "cancelled"]
    assert body["cancel_reason"] == "Changed my mind"
    assert body["state"] == "provisioning"
    assert world.new_mail(mail) == [("request.cancelled", "alice")]

    only_pending = world.ask("bob", "ledger")
    resp = world.client.post(f"/requests/{only_pending['id']}/cancel",
                             headers=world.as_("bob"), json={"reason": "Not needed"})
    assert resp.json()["state"] == "cancelled"
    again = world.client.post(f"/requests/{only_pending['id']}/cancel",
                              headers=world.as_("bob"), json={"reason": "Twice"})
    assert again.status_code == 409


def test_a_fulfilled_request_can_no_longer_be_cancelled(world: World) -> None:
    req = world.ask("alice", "ledger")
    for who in ("manager", "owner"):
        step = waiting(world.request(req["id"])["lines"][0])
        assert world.decide(who, step["id"]).status_code == 200
    resp = world.client.post(f"/requests/{req['id']}/cancel", headers=world.as_("alice"),
                             json={"reason": "Too late"})
    assert resp.status_code == 409
    assert "provisioning" in resp.json()["detail"]


def test_revoke_on_request(world: World) -> None:
    world.ask("alice", "wiki")
    [held] = world.assignments("alice")
    req = world.ask("alice", "wiki", line={"action": "revoke"})
    [line] = req["lines"]
    assert (line["action"], line["assignment_id"], line["steps"]) == ("revoke", held["id"], [])
    [ended] = world.assignments("alice")
    assert ended["revoked_at"] is not None
    assert ended["revoke_reason"] == f"{req['number']}/{line['number']}: revoked on request"
    # Asking again after a revocation is no duplicate.
    again = world.ask("alice", "wiki")
    assert again["state"] == "provisioning"
    assert len(world.assignments("alice", active="true")) == 1
