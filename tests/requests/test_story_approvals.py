"""Stories of people approving: manager then owner, dual control, delegation, escalation.

The outbox (notification kind, recipient) is checked after each step: the emails each step
sends.
"""

from __future__ import annotations

from datetime import timedelta

from idgov.config import Settings
from idgov.requests.cli import sweep
from tests.requests.conftest import World, waiting


def test_manager_then_owner_each_step_mailing_the_right_people(world: World) -> None:
    mail = world.outbox()
    req = world.ask("alice", "ledger")
    [line] = req["lines"]
    assert req["state"] == line["state"] == "pending_approval"
    assert [(s["stage"], s["kind"], s["state"]) for s in line["steps"]] == [
        (1, "manager", "waiting"), (2, "owner", "pending")]
    manager_step, owner_step = line["steps"]
    assert manager_step["approvers"] == [world.ids["manager"]]
    assert world.new_mail(mail) == [("approval.waiting", "manager"),
                                    ("request.submitted", "alice")]

    # The owner cannot decide first: not an approver of the manager's step, and their own
    # step has not started.
    mail = world.outbox()
    assert world.decide("owner", manager_step["id"]).status_code == 403
    refused = world.decide("owner", owner_step["id"])
    assert refused.status_code == 409, refused.text
    assert world.new_mail(mail) == []

    resp = world.decide("manager", manager_step["id"], comment="Fine by me")
    assert resp.status_code == 200, resp.text
    [line] = resp.json()["lines"]
    assert [(s["kind"], s["state"]) for s in line["steps"]] == [
        ("manager", "approved"), ("owner", "waiting")]
    assert line["state"] == "pending_approval"
    assert world.assignments("alice") == []
    assert world.new_mail(mail) == [("approval.waiting", "owner")]

    mail = world.outbox()
    resp = world.decide("owner", owner_step["id"])
    assert resp.status_code == 200, resp.text
    done = resp.json()
    [line] = done["lines"]
    assert (done["state"], line["state"]) == ("provisioning", "provisioning")
    [assignment] = world.assignments("alice")
    assert (assignment["entitlement_id"], assignment["request_line_id"]) == (
        world.ids["ledger"], line["id"])
    assert world.new_mail(mail) == [("request.decided", "alice")]

    # Deciding again, or deciding a closed line, changes nothing.
    assert world.decide("owner", owner_step["id"]).status_code == 409
    assert world.decide("manager", manager_step["id"]).status_code == 409
    assert len(world.assignments("alice")) == 1


def test_a_rejection_rejects_the_line_and_tells_the_requester(world: World) -> None:
    req = world.ask("alice", "ledger")
    step = waiting(req["lines"][0])
    no_reason = world.decide("manager", step["id"], "reject")
    assert no_reason.status_code == 422, no_reason.text
    mail = world.outbox()
    resp = world.decide("manager", step["id"], "reject", comment="Not your job")
    assert resp.status_code == 200, resp.text
    body = resp.json()
    [line] = body["lines"]
    assert (body["state"], line["state"], line["state_reason"]) == (
        "rejected", "rejected", "Not your job")
    assert [s["state"] for s in line["steps"]] == ["rejected", "cancelled"]
    assert world.new_mail(mail) == [("request.decided", "alice")]
    # A decision on the closed request is refused.
    assert world.decide("owner", line["steps"][1]["id"]).status_code == 409
    assert world.assignments("alice") == []


def test_privileged_access_needs_two_distinct_approvers(world: World) -> None:
    req = world.ask("alice", "dba", type_key="privileged-access")
    [line] = req["lines"]
    assert (line["risk"], line["privileged"]) == ("high", True)
    assert [(s["kind"], s["required_approvals"]) for s in line["steps"]] == [
        ("manager", 1), ("dual_control", 2)]
    assert world.decide("manager", waiting(line)["id"]).status_code == 200

    dual = waiting(world.request(req["id"])["lines"][0])
    assert sorted(dual["approvers"]) == sorted([world.ids["sec1"], world.ids["sec2"]])
    first = world.decide("sec1", dual["id"])
    assert first.status_code == 200, first.text
    assert first.json()["lines"][0]["state"] == "pending_approval"
    again = world.decide("sec1", dual["id"])
    assert again.status_code == 409, again.text
    assert world.assignments("alice") == []

    second = world.decide("sec2", dual["id"])
    assert second.status_code == 200, second.text
    [line] = second.json()["lines"]
    assert line["state"] == "provisioning"
    assert sorted(a["approver_id"] for a in line["steps"][1]["approvals"]) == sorted([
        world.ids["sec1"], world.ids["sec2"]])
    [assignment] = world.assignments("alice")
    assert assignment["entitlement_id"] == world.ids["dba"]


def test_a_delegate_approves_on_behalf_of_the_manager(world: World) -> None:
    resp = world.client.post("/delegations", headers=world.as_("manager"), json={
        "delegate_id": world.ids["deputy"],
        "ends_at": (world.clock.now() + timedelta(days=7)).isoformat(),
        "max_risk": "medium", "reason": "Holiday"})
    assert resp.status_code == 201, resp.text
    req = world.ask("alice", "ledger")
    step = waiting(req["lines"][0])
    # The delegate sees the request they may decide; someone unrelated does not.
    assert world.get("deputy", req["id"]).status_code == 200
    assert world.get("outsider", req["id"]).status_code == 404

    resp = world.decide("deputy", step["id"])
    assert resp.status_code == 200, resp.text
    [approval] = resp.json()["lines"][0]["steps"][0]["approvals"]
    assert (approval["approver_id"], approval["on_behalf_of_id"], approval["decision"]) == (
        world.ids["deputy"], world.ids["manager"], "approve")
    # The manager cannot decide the same step a second time through their own name.
    assert world.decide("manager", step["id"]).status_code == 409


def test_an_overdue_step_escalates_to_the_managers_manager(world: World,
                                                           settings: Settings) -> None:
    req = world.ask("alice", "ledger")
    step = waiting(req["lines"][0])
    world.clock.advance(timedelta(hours=47))
    assert sweep(world.factory, settings=settings, clock=world.clock).escalated == 0

    mail = world.outbox()
    world.clock.advance(timedelta(hours=2))
    result = sweep(world.factory, settings=settings, clock=world.clock)
    assert result.escalated == 1
    assert world.new_mail(mail) == [("approval.escalated", "director")]
    step = waiting(world.request(req["id"])["lines"][0])
    assert (step["escalation_level"], sorted(step["approvers"])) == (
        1, sorted([world.ids["manager"], world.ids["director"]]))

    resp = world.decide("director", step["id"])
    assert resp.status_code == 200, resp.text
    [line] = resp.json()["lines"]
    assert [(s["kind"], s["state"]) for s in line["steps"]] == [
        ("manager", "approved"), ("owner", "waiting")]
    assert line["steps"][0]["approvals"][0]["approver_id"] == world.ids["director"]
