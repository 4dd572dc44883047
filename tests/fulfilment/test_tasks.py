"""Manual fulfilment: a manual application's operation becomes a task its resolution group
works; the operation and the request line follow the task; overdue tasks escalate."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import select

from idgov.db.session import unit_of_work
from idgov.fulfilment.tasks import escalate_overdue_tasks
from idgov.models.application import Account
from idgov.models.audit import AuditEvent
from idgov.models.notifications import Notification
from idgov.types import Actor
from tests.conftest import START
from tests.fulfilment.conftest import Desk


def _one_task(desk: Desk) -> tuple[str, dict[str, str]]:
    """Alice asks for Ledger; the engine turns the grant into a task. (task id, line)"""
    request = desk.ask("alice", "ledger")
    line = request["lines"][0]
    assert (request["state"], line["state"]) == ("provisioning", "provisioning")
    tasks = desk.engine_round()
    assert len(tasks) == 1
    return tasks[0], {"request_id": request["id"], "line_id": line["id"]}


def _notified(desk: Desk, kind: str) -> list[str]:
    names = {v: k for k, v in desk.ids.items()}
    with unit_of_work(desk.factory) as session:
        rows = session.scalars(select(Notification.recipient_id)
                               .where(Notification.kind == kind)).all()
    return sorted(names[str(r)] for r in rows)


def test_an_operation_of_a_manual_application_becomes_a_task_for_its_group(
        desk: Desk) -> None:
    task_id, _ = _one_task(desk)

    task = desk.task(task_id)
    assert task.summary == ("Grant Ledger [cn=Ledger] to Alice Adams (aadams) in Legacy ERP. "
                            "Create the account aadams first if Alice Adams has none there.")
    assert (task.state, str(task.group_id), str(task.identity_id)) == (
        "open", desk.ids["group"], desk.ids["alice"])
    assert task.due_at == START + timedelta(hours=48)
    assert _notified(desk, "fulfilment.task") == ["fay", "finn"]
    # The operation waits for the task.
    assert desk.operation(task.operation_id).state == "running"

    listed = desk.client.get("/fulfilment/tasks", headers=desk.as_("fay"))
    assert listed.status_code == 200, listed.text
    assert [t["id"] for t in listed.json()["items"]] == [task_id]
    assert desk.client.get("/fulfilment/tasks", headers=desk.admin).json()["items"][0][
        "summary"] == task.summary
    # Someone outside the group sees nothing of it.
    assert desk.client.get("/fulfilment/tasks", headers=desk.as_("oscar")).json() == {
        "items": [], "next_cursor": None}
    assert desk.client.get(f"/fulfilment/tasks/{task_id}",
                           headers=desk.as_("oscar")).status_code == 404
    assert desk.client.get(f"/fulfilment/tasks/{task_id}",
                           headers=desk.as_("finn")).json()["state"] == "open"


def test_a_member_completes_the_task_and_the_request_line_is_fulfilled(desk: Desk) -> None:
    task_id, where = _one_task(desk)

    resp = desk.client.post(f"/fulfilment/tasks/{task_id}/complete",
                            json={"note": "Added in the ERP admin screen"},
                            headers=desk.as_("fay"))
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert (body["state"], body["completed_by_id"], body["note"]) == (
        "completed", desk.ids["fay"], "Added in the ERP admin screen")

    task = desk.task(task_id)
    op = desk.operation(task.operation_id)
    assert (op.state, op.last_error) == ("succeeded", None)
    request = desk.request(where["request_id"])
    assert (request["state"], request["lines"][0]["state"]) == ("fulfilled", "fulfilled")
    # The account the person created by hand is known now, under the name the task gave.
    with unit_of_work(desk.factory) as session:
        account = session.scalars(select(Account).where(
            Account.identity_id == uuid.UUID(desk.ids["alice"]))).one()
        assert (account.username, account.native_id, account.status) == (
            "aadams", "aadams", "active")
        actions = session.scalars(select(AuditEvent.action).where(
            AuditEvent.object_id == task_id).order_by(AuditEvent.seq)).all()
    assert list(actions) == ["fulfilment_task.open", "fulfilment_task.complete"]
    # Done is done.
    again = desk.client.post(f"/fulfilment/tasks/{task_id}/complete", json={},
                             headers=desk.as_("finn"))
    assert again.status_code == 409


def test_only_members_of_the_group_work_its_tasks(desk: Desk) -> None:
    task_id, _ = _one_task(desk)
    # Not in the group: the task does not exist for them.
    for who in ("oscar", "lena", "alice"):
        resp = desk.client.post(f"/fulfilment/tasks/{task_id}/complete", json={},
                                headers=desk.as_(who))
        assert resp.status_code == 404, who
    # An administrator sees it but does not work it.
    resp = desk.client.post(f"/fulfilment/tasks/{task_id}/complete", json={},
                            headers=desk.admin)
    assert resp.status_code == 403
    assert desk.task(task_id).state == "open"


def test_a_member_reports_the_task_failed_and_the_operation_fails_with_the_note(
        desk: Desk) -> None:
    task_id, where = _one_task(desk)
    refused = desk.client.post(f"/fulfilment/tasks/{task_id}/fail", json={},
                               headers=desk.as_("fay"))
    assert refused.status_code == 422  # a note is required

    resp = desk.client.post(f"/fulfilment/tasks/{task_id}/fail",
                            json={"note": "No such cost centre in the ERP"},
                            headers=desk.as_("fay"))
    assert resp.status_code == 200, resp.text
    assert resp.json()["state"] == "failed"
    op = desk.operation(desk.task(task_id).operation_id)
    assert (op.state, op.error_category, str(op.resolution_group_id), op.last_error) == (
        "failed", "data_error", desk.ids["group"],
        "fulfilment task failed: No such cost centre in the ERP")
    request = desk.request(where["request_id"])
    assert (request["state"], request["lines"][0]["state"]) == ("failed", "failed")


def test_a_failure_may_say_the_target_refuses_it(desk: Desk) -> None:
    task_id, _ = _one_task(desk)
    resp = desk.client.post(f"/fulfilment/tasks/{task_id}/fail",
                            json={"note": "Owner says no", "category": "policy_violation"},
                            headers=desk.as_("finn"))
    assert resp.status_code == 200, resp.text
    assert desk.operation(desk.task(task_id).operation_id).error_category == "policy_violation"


def test_overdue_tasks_escalate_to_the_group_owner_and_the_application_owner(
        desk: Desk) -> None:
    task_id, _ = _one_task(desk)
    actor = Actor.system("sweep")

    desk.clock.advance(timedelta(hours=47))
    with unit_of_work(desk.factory) as session:
        assert escalate_overdue_tasks(session, clock=desk.clock, actor=actor) == 0

    desk.clock.advance(timedelta(hours=2))
    with unit_of_work(desk.factory) as session:
        assert escalate_overdue_tasks(session, clock=desk.clock, actor=actor) == 1
    task = desk.task(task_id)
    assert (task.escalation_level, task.state) == (1, "open")
    assert task.due_at == START + timedelta(hours=49 + 24)
    assert _notified(desk, "fulfilment.escalated") == ["lena", "olga"]

    # Not overdue again until the new deadline passes.
    with unit_of_work(desk.factory) as session:
        assert escalate_overdue_tasks(session, clock=desk.clock, actor=actor) == 0
    desk.clock.advance(timedelta(hours=24))
    with unit_of_work(desk.factory) as session:
        assert escalate_overdue_tasks(session, clock=desk.clock, actor=actor) == 1
    assert desk.task(task_id).escalation_level == 2
    assert _notified(desk, "fulfilment.escalated") == ["lena", "lena", "olga", "olga"]

    # A completed task no longer escalates.
    desk.client.post(f"/fulfilment/tasks/{task_id}/complete", json={},
                     headers=desk.as_("fay"))
    desk.clock.advance(timedelta(days=10))
    with unit_of_work(desk.factory) as session:
        assert escalate_overdue_tasks(session, clock=desk.clock, actor=actor) == 0
