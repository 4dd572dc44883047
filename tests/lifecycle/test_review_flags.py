"""Review flags: a mover's requested access is flagged for the new manager, who keeps or
revokes it through /review-flags; others do not see the flags; a leaver's flags close."""

from __future__ import annotations

import uuid

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from idgov.assignments import service as assignments
from idgov.clock import FixedClock
from idgov.db.session import unit_of_work
from idgov.lifecycle import review_flags
from idgov.models.assignment import Assignment
from idgov.models.hr import ReviewFlag
from idgov.models.notifications import Notification
from idgov.models.provisioning import ProvisioningOperation
from tests.conftest import PersonHeaders, make_token
from tests.lifecycle.events_world import ACTOR, Life, life_fixture

__all__ = ["life_fixture"]


def _requested(life: Life, name: str, entitlement: str) -> uuid.UUID:
    with unit_of_work(life.factory) as session:
        return assignments.grant(
            session, identity_id=life.ids[name],
            entitlement_id=uuid.UUID(life.env.ent[entitlement]), source="request",
            reason="REQ-2026-000009/RITM-2026-000011", valid_from=None, valid_until=None,
            actor=ACTOR, clock=life.clock).id


def _flag(life: Life, name: str, reviewer: str | None) -> list[ReviewFlag]:
    with unit_of_work(life.factory) as session:
        made = review_flags.flag_requested_access(
            session, identity_id=life.ids[name],
            reviewer_id=life.ids[reviewer] if reviewer else None, change_id=None,
            reason="moved from Finance to Sales", actor=ACTOR, clock=life.clock)
        session.expunge_all()
        return made


def test_a_movers_requested_access_is_flagged_once_for_the_new_manager(life: Life) -> None:
    erp = _requested(life, "Alice", "ERP-Read")
    life.env.assign("Alice", "VPN")  # an administrator's grant: not flagged
    life.set("Alice", manager_id=life.ids["Boss"])

    [flag] = _flag(life, "Alice", "Boss")

    assert (flag.assignment_id, flag.reviewer_id, flag.state) == (erp, life.ids["Boss"],
                                                                   "open")
    assert _flag(life, "Alice", "Boss") == []
    with unit_of_work(life.factory) as session:
        [note] = session.scalars(select(Notification).where(
            Notification.recipient_id == life.ids["Boss"],
            Notification.kind == "review_flags.opened")).all()
        assert "entitlement ERP-Read" in note.body


def test_the_reviewer_sees_and_decides_their_flags_and_nobody_else_does(
        life: Life, client: TestClient, people: PersonHeaders,
        admin_headers: dict[str, str], session_factory: sessionmaker[Session],
        clock: FixedClock) -> None:
    erp = _requested(life, "Alice", "ERP-Read")
    post = _requested(life, "Alice", "ERP-Post")
    life.set("Alice", manager_id=life.ids["Boss"])
    made = {f.assignment_id: f.id for f in _flag(life, "Alice", "Boss")}
    boss, bob, alice = (people[str(life.ids[n])] for n in ("Boss", "Bob", "Alice"))
    auditor = {"Authorization": "Bearer " + make_token(session_factory, clock, "auditor",
                                                       ["auditor"])}

    mine = client.get("/review-flags", headers=boss)
    assert mine.status_code == 200, mine.text
    assert {i["id"] for i in mine.json()["items"]} == {str(made[erp]), str(made[post])}
    assert client.get("/review-flags", headers=bob).json()["items"] == []
    assert len(client.get("/review-flags", headers=auditor).json()["items"]) == 2
    flag_url = f"/review-flags/{made[erp]}"
    assert client.get(flag_url, headers=bob).status_code == 404
    assert client.get(flag_url, headers=auditor).status_code == 200
    decision = {"decision": "revoked", "comment": "not needed in Sales"}
    assert client.post(f"{flag_url}/decision", headers=bob, json=decision).status_code == 404
    assert client.post(f"{flag_url}/decision", headers=alice,
                       json=decision).status_code == 404
    assert client.post(f"{flag_url}/decision", headers=auditor,
                       json=decision).status_code == 403
    assert client.post(f"{flag_url}/decision", headers=boss,
                       json={"decision": "maybe"}).status_code == 422

    done = client.post(f"{flag_url}/decision", headers=boss, json=decision)

    assert done.status_code == 200, done.text
    assert done.json()["state"] == "revoked"
    assert done.json()["closed_at"] == clock.now().isoformat().replace("+00:00", "Z")
    with unit_of_work(session_factory) as session:
        revoked = session.get(Assignment, erp)
        assert revoked is not None and revoked.revoked_at == clock.now()
        assert revoked.revoke_reason == "review after a move: not needed in Sales"
        assert session.scalars(select(ProvisioningOperation).where(
            ProvisioningOperation.assignment_id == erp,
            ProvisioningOperation.action == "revoke")).all()
    again = client.post(f"{flag_url}/decision", headers=boss, json=decision)
    assert again.status_code == 409

    kept = client.post(f"/review-flags/{made[post]}/decision", headers=boss,
                       json={"decision": "kept"})
    assert kept.json()["state"] == "kept"
    with unit_of_work(session_factory) as session:
        certified = session.get(Assignment, post)
        assert certified is not None and certified.last_certified_at == clock.now()
    assert client.get("/review-flags", headers=boss).json()["items"] == []
    closed = client.get("/review-flags", headers=admin_headers, params={"state": "kept"})
    assert [i["id"] for i in closed.json()["items"]] == [str(made[post])]


def test_a_flag_without_reviewer_is_decided_by_an_administrator(
        life: Life, client: TestClient, admin_headers: dict[str, str]) -> None:
    _requested(life, "Carol", "VPN")
    [flag] = _flag(life, "Carol", None)
    assert flag.reviewer_id is None

    answer = client.post(f"/review-flags/{flag.id}/decision", headers=admin_headers,
                         json={"decision": "kept", "comment": "still needed"})

    assert answer.status_code == 200, answer.text
    assert answer.json()["closed_by"].endswith("test-admin")


def test_a_leavers_open_flags_close_and_a_leaving_reviewers_pass_to_their_manager(
        life: Life) -> None:
    _requested(life, "Bob", "VPN")
    _requested(life, "Carol", "VPN")
    [bobs] = _flag(life, "Bob", "Alice")
    [carols] = _flag(life, "Carol", "Mia")

    life.terminate("Carol")
    life.terminate("Alice")

    with unit_of_work(life.factory) as session:
        closed = session.get(ReviewFlag, carols.id)
        moved = session.get(ReviewFlag, bobs.id)
        assert closed is not None and closed.state == "closed"
        assert moved is not None and (moved.state, moved.reviewer_id) == ("open",
                                                                          life.ids["Mia"])
