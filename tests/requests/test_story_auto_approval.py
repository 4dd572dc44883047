"""Story: a low-risk entitlement asked with a type that auto-approves low risk."""

from __future__ import annotations

import uuid

from idgov.db.session import unit_of_work
from idgov.provisioning import service as provisioning
from idgov.types import Actor
from tests.catalog.factories import audit_actions
from tests.requests.conftest import World


def test_a_low_risk_line_is_granted_at_once_with_numbers_in_sequence(world: World) -> None:
    first = world.ask("alice", "wiki")

    assert first["number"] == "REQ-2026-000001"
    assert first["requester_id"] == first["beneficiary_id"] == world.ids["alice"]
    [line] = first["lines"]
    assert line["number"] == "RITM-2026-000001"
    assert line["steps"] == []
    assert line["decision"]["auto_approved"] is True
    # The assignment exists at once; its provisioning operation waits for the connectors.
    assert (first["state"], line["state"]) == ("provisioning", "provisioning")
    [assignment] = world.assignments("alice")
    assert assignment["id"] == line["assignment_id"]
    assert (assignment["entitlement_id"], assignment["source"], assignment["request_line_id"],
            assignment["reason"]) == (world.ids["wiki"], "request", line["id"],
                                      "REQ-2026-000001/RITM-2026-000001")
    ops = world.client.get("/provisioning/operations", headers=world.admin,
                           params={"request_line_id": line["id"]}).json()["items"]
    assert [(o["action"], o["entitlement_id"], o["state"]) for o in ops] == [
        ("grant", world.ids["wiki"], "pending")]

    # Every transition is in the audit trail.
    assert audit_actions(world.factory, first["id"]) == [
        "request.create", "request.submitted", "request.approved", "request.provisioning"]
    assert audit_actions(world.factory, line["id"]) == [
        "request_line.submit", "request_line.approved", "request_line.fulfil",
        "request_line.provisioning"]

    second = world.ask("bob", "wiki", "payables")
    assert second["number"] == "REQ-2026-000002"
    assert [ln["number"] for ln in second["lines"]] == ["RITM-2026-000002", "RITM-2026-000003"]

    # When the connector reports success, the line and the request are fulfilled.
    with unit_of_work(world.factory) as session:
        provisioning.complete_operation(session, operation_id=uuid.UUID(ops[0]["id"]),
                                        succeeded=True, error=None,
                                        actor=Actor.system("connector"), clock=world.clock)
    done = world.request(first["id"])
    assert (done["state"], done["lines"][0]["state"]) == ("fulfilled", "fulfilled")
    assert audit_actions(world.factory, first["id"])[-1] == "request.fulfilled"
    assert sorted(world.outbox()) == sorted([
        ("request.submitted", "alice"), ("request.submitted", "bob"),
        ("request.fulfilled", "alice")])
