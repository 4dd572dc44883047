"""Bad input: each refused with a clear problem, at its field, and changing nothing."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from idgov.db.session import unit_of_work
from idgov.models.assignment import Assignment
from idgov.models.audit import AuditEvent
from idgov.models.notifications import Notification
from idgov.models.requests import AccessRequest, Approval, RequestLine
from tests.requests.conftest import World, waiting


def _state(world: World) -> tuple[int, ...]:
    with unit_of_work(world.factory) as session:
        return tuple(session.scalar(select(func.count()).select_from(m)) or 0
                     for m in (AccessRequest, RequestLine, Assignment, Approval, Notification,
                               AuditEvent))


@pytest.fixture
def unchanged(world: World) -> Iterator[None]:
    before = _state(world)
    yield
    assert _state(world) == before


def _fields(problem: dict[str, Any]) -> list[str]:
    return sorted(e["field"] for e in problem["errors"])


def test_malformed_form_data_is_refused_at_its_fields(world: World, unchanged: None) -> None:
    problem = world.ask("alice", "wiki", status=422, form={
        "justification": "short", "ticket_reference": "not a ticket", "colour": "blue"})
    assert _fields(problem) == ["form_data.colour", "form_data.justification",
                                "form_data.ticket_reference"]
    problem = world.ask("alice", "wiki", status=422, form={})
    assert [(e["field"], e["message"]) for e in problem["errors"]] == [
        ("form_data.justification", "is required")]


def test_unknown_item_and_unknown_type(world: World, unchanged: None) -> None:
    body = {"request_type": "application-access", "form_data": {"justification": "x" * 12},
            "lines": [{"entitlement_id": "00000000-0000-4000-8000-000000000000"}]}
    resp = world.client.post("/requests", json=body, headers=world.as_("alice"))
    assert resp.status_code == 422
    assert _fields(resp.json()) == ["lines.0.entitlement_id"]
    resp = world.client.post("/requests", json=body | {"request_type": "no-such-type"},
                             headers=world.as_("alice"))
    assert resp.status_code == 422
    assert _fields(resp.json()) == ["request_type"]


def test_beneficiary_must_be_active_and_a_report(world: World, unchanged: None) -> None:
    problem = world.ask("ceo", "wiki", beneficiary_id=world.ids["leaver"], status=422)
    assert _fields(problem) == ["beneficiary_id"]
    # Only a manager above the beneficiary may ask for them.
    world.ask("outsider", "wiki", beneficiary_id=world.ids["alice"], status=403)
    world.ask("bob", "wiki", beneficiary_id=world.ids["alice"], status=403)


def test_durations_beyond_the_maximum(world: World, unchanged: None) -> None:
    too_long = (world.clock.now() + timedelta(days=31)).isoformat()
    problem = world.ask("alice", "glass", line={"valid_until": too_long}, status=422)
    assert _fields(problem) == ["lines.0.valid_until"]
    assert "30 days" in problem["errors"][0]["message"]
    problem = world.ask("alice", "ledger", type_key="temporary-elevated-access",
                        line={"duration_days": 15}, status=422)
    assert _fields(problem) == ["lines.0.duration_days"]
    problem = world.ask("alice", "ledger", type_key="temporary-elevated-access", status=422)
    assert _fields(problem) == ["lines.0.valid_until"]
    past = (world.clock.now() - timedelta(days=1)).isoformat()
    problem = world.ask("alice", "ledger", line={"valid_until": past}, status=422)
    assert _fields(problem) == ["lines.0.valid_until"]


def test_personal_data_needs_the_acknowledgement(world: World) -> None:
    before = _state(world)
    problem = world.ask("alice", "hr", status=422)
    assert _fields(problem) == ["form_data.data_handling_acknowledged"]
    assert "HR records" in problem["errors"][0]["message"]
    assert _state(world) == before
    req = world.ask("alice", "hr", form={"justification": "Payroll corrections",
                                         "data_handling_acknowledged": True})
    # Personal data is not fulfilled by connectors under this type: a person does it.
    assert req["lines"][0]["fulfilment"] == "manual"


def test_revoking_what_is_not_held(world: World, unchanged: None) -> None:
    problem = world.ask("alice", "wiki", line={"action": "revoke"}, status=422)
    assert _fields(problem) == ["lines.0"]


def test_wrong_approver_second_decision_and_closed_request(world: World) -> None:
    req = world.ask("alice", "ledger")
    step = waiting(req["lines"][0])
    before = _state(world)
    assert world.decide("outsider", step["id"]).status_code == 403
    assert world.decide("alice", step["id"]).status_code == 403
    assert world.decide("owner", step["id"]).status_code == 403
    assert _state(world) == before

    assert world.decide("manager", step["id"]).status_code == 200
    before = _state(world)
    assert world.decide("manager", step["id"]).status_code == 409
    assert _state(world) == before

    owner_step = waiting(world.request(req["id"])["lines"][0])
    cancel = world.client.post(f"/requests/{req['id']}/cancel", headers=world.as_("alice"),
                               json={"reason": "No longer needed"})
    assert cancel.status_code == 200, cancel.text
    before = _state(world)
    resp = world.decide("owner", owner_step["id"])
    assert resp.status_code == 409, resp.text
    assert _state(world) == before


def test_bad_request_types(world: World) -> None:
    bad_schema = {"key": "broken", "name": "Broken",
                  "form_schema": {"type": "object", "properties": {"x": {"type": "strange"}}}}
    resp = world.client.post("/request-types", json=bad_schema, headers=world.admin)
    assert resp.status_code == 422
    assert _fields(resp.json()) == ["form_schema"]
    resp = world.client.post("/request-types", headers=world.admin,
                             json={"key": "list", "name": "L", "form_schema": {"type": "array"}})
    assert resp.status_code == 422
    resp = world.client.post("/request-types", headers=world.admin,
                             json={"key": "application-access", "name": "Again"})
    assert resp.status_code == 409
