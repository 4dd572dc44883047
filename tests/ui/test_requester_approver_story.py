"""In the browser: a requester asks for access through the dynamic form (a validation
error shown at its field first), the approvers approve it from their inbox, and the
request's state changes; a requester cannot decide someone else's step (refused as the
API refuses it, nothing changed)."""

from __future__ import annotations

import re
import uuid
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session

from idgov.auth.caller import Caller
from idgov.auth.roles import person_roles
from idgov.db.session import unit_of_work
from idgov.errors import Forbidden
from idgov.models.catalog import Entitlement
from idgov.models.identity import Identity
from idgov.models.requests import AccessRequest, ApprovalStep, ApprovalStepApprover, RequestLine
from tests.ui.conftest import DemoWorld, LiveServer

ITEM = "ServiceNow-ITIL"  # medium risk, no personal data: the manager, then the owner approve


def nav(page: Any, name: str) -> None:
    """Follow a link of the main navigation."""
    page.get_by_role("navigation", name="Main").get_by_role("link", name=name,
                                                            exact=True).click()


def _waiting_step(live: LiveServer, number: str) -> tuple[uuid.UUID, uuid.UUID] | None:
    """(step id, first approver) of the request's waiting step, or None."""
    with unit_of_work(live.factory) as session:
        row = session.execute(
            select(ApprovalStep.id, ApprovalStepApprover.identity_id)
            .join(RequestLine, RequestLine.id == ApprovalStep.line_id)
            .join(AccessRequest, AccessRequest.id == RequestLine.request_id)
            .join(ApprovalStepApprover, ApprovalStepApprover.step_id == ApprovalStep.id)
            .where(AccessRequest.number == number, ApprovalStep.state == "waiting")
            .order_by(ApprovalStepApprover.identity_id)).first()
    return None if row is None else (row[0], row[1])


def _request_state(live: LiveServer, number: str) -> str:
    with unit_of_work(live.factory) as session:
        state = session.scalar(select(AccessRequest.state).where(AccessRequest.number == number))
    return str(state)


def _submit_through_the_form(page: Any, shoot: Any) -> str:
    nav(page, "Catalog")
    page.get_by_label("Search roles and access").fill("ServiceNow")
    page.get_by_role("button", name="Search").click()
    shoot(page, "1-catalog")
    page.get_by_role("link", name=f"Request {ITEM}").click()
    page.get_by_label("Justification").fill("too short")
    page.get_by_role("button", name="Submit the request").click()
    error = page.locator('[data-field-error="form_data.justification"]')
    assert error.inner_text() == "'too short' is too short"
    assert page.get_by_label("Justification").get_attribute("aria-invalid") == "true"
    assert page.get_by_label("Justification").input_value() == "too short"  # kept
    shoot(page, "2-form-error")
    page.get_by_label("Justification").fill("Change approvals for the ERP upgrade project")
    page.get_by_role("button", name="Submit the request").click()
    page.wait_for_url(re.compile(r".*/ui/requests/[0-9a-f-]{36}$"))
    assert page.locator("h1").inner_text().startswith("REQ-"), page.locator("main").inner_text()
    heading = page.locator("h1").inner_text()
    number = heading.split()[0]
    assert number.startswith("REQ-2026-")
    assert page.get_by_test_id("request-state").inner_text() == "pending approval"
    shoot(page, "3-request-submitted")
    return number


def test_requester_submits_through_the_form_and_approvers_approve_it(
        live: LiveServer, demo: DemoWorld, signed_in: Any, shoot: Any) -> None:
    requester = signed_in(demo.personas["requester"])
    number = _submit_through_the_form(requester, shoot)
    nav(requester, "My requests")
    row = requester.locator(f'tr[data-request="{number}"]')
    manager = demo.manager_of[demo.personas["requester"]]
    with unit_of_work(live.factory) as session:
        manager_name = session.get(Identity, manager).display_name  # type: ignore[union-attr]
    assert row.locator(".waits").inner_text().endswith(manager_name)  # what it waits on
    shoot(requester, "4-my-requests")

    decided = 0
    while (waiting := _waiting_step(live, number)) is not None:
        step_id, approver_id = waiting
        approver = signed_in(approver_id)
        nav(approver, "Approvals")
        approver.locator(f'a[href="/ui/approvals/{step_id}"]').click()
        assert approver.get_by_test_id("policy-decision").is_visible()
        assert approver.get_by_text("No SoD rule is broken by this access.").is_visible()
        shoot(approver, f"5-approval-{decided}")
        approver.get_by_label("Comment").fill("Fine for the project")
        approver.get_by_role("button", name="Approve").click()
        assert "You approved the step." in approver.locator(".notice").first.inner_text()
        shoot(approver, f"6-inbox-after-{decided}")
        decided += 1
        assert decided <= 3
    assert decided == 2  # the manager, then the owner
    assert _request_state(live, number) in ("provisioning", "fulfilled")
    requester.reload()
    assert requester.locator(f'tr[data-request="{number}"] .state').first.inner_text() in (
        "provisioning", "fulfilled")
    shoot(requester, "7-my-requests-after")


def _api_as_person(live: LiveServer) -> None:
    """Let the API accept ``Bearer person:<id>`` like tests/conftest.py's ``people``."""

    def resolve(session: Session, token: str) -> Caller:
        identity_id = uuid.UUID(token.removeprefix("person:"))
        found = person_roles(session, identity_id)
        identity = session.get(Identity, identity_id)
        if found is None or identity is None or not found.active:
            raise Forbidden("no active identity")
        return Caller.build(kind="oidc", name=identity.display_name, roles=found.roles,
                            identity_id=identity_id)

    live.app.state.ctx.oidc = resolve


def test_a_requester_cannot_decide_someone_elses_step(
        live: LiveServer, demo: DemoWorld, signed_in: Any, shoot: Any) -> None:
    requester = signed_in(demo.personas["requester"])
    number = _submit_through_the_form(requester, shoot)
    waiting = _waiting_step(live, number)
    assert waiting is not None
    step_id, _manager = waiting
    other = demo.personas["owner"]
    with unit_of_work(live.factory) as session:  # someone who is no approver of this step
        owner_of_item = session.scalar(select(Entitlement.owner_id)
                                       .where(Entitlement.name == ITEM))
    intruder = other if other not in (owner_of_item, _manager) else demo.personas["resolution"]
    page = signed_in(intruder)

    page.goto(f"/ui/approvals/{step_id}")
    assert page.locator("p.problem").get_attribute("data-status") == "404"
    shoot(page, "refused-step-page")
    token = page.locator("input[name=csrf_token]").first.input_value()
    refused = page.request.post(f"/ui/approvals/{step_id}/decision", form={
        "csrf_token": token, "decision": "approve", "comment": "not mine"})
    no_token = page.request.post(f"/ui/approvals/{step_id}/decision", form={
        "decision": "approve"})

    _api_as_person(live)
    api = httpx.post(f"{live.url}/approvals/{step_id}/decision",
                     json={"decision": "approve", "comment": "not mine"},
                     headers={"Authorization": f"Bearer person:{intruder}"})
    api_get = httpx.get(f"{live.url}/approvals/{step_id}",
                        headers={"Authorization": f"Bearer person:{intruder}"})
    assert (refused.status, api.status_code) == (403, 403)
    assert (api_get.status_code, no_token.status) == (404, 403)
    assert _waiting_step(live, number) == waiting  # nothing changed
    assert _request_state(live, number) == "pending_approval"
