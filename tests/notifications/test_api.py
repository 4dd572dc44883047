"""GET /me/notifications and POST /me/notifications/{id}/read, as the people themselves."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from idgov.clock import FixedClock
from idgov.models.audit import AuditEvent
from tests.conftest import START, PersonHeaders
from tests.notifications.conftest import add_notification, add_person, load


def _subjects(body: dict[str, Any]) -> list[str]:
    return [item["subject"] for item in body["items"]]


def test_a_person_lists_their_own_notifications_newest_first(
        client: TestClient, people: PersonHeaders, session_factory: sessionmaker[Session],
        clock: FixedClock) -> None:
    alice = add_person(session_factory, "Alice")
    bob = add_person(session_factory, "Bob")
    first = add_notification(session_factory, clock, alice, "first")
    clock.advance(timedelta(minutes=5))
    add_notification(session_factory, clock, bob, "for bob")
    add_notification(session_factory, clock, alice, "second", kind="request.decided")

    resp = client.get("/me/notifications", headers=people[str(alice)])

    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert _subjects(body) == ["second", "first"]
    assert body["next_cursor"] is None
    assert body["items"][1] == {
        "id": str(first), "kind": "approval.waiting", "subject": "first",
        "body": "Please decide.", "object_type": "approval_step", "object_id": "step-1",
        "created_at": "2026-01-15T09:00:00Z", "read_at": None, "email_state": "pending",
        "sent_at": None,
    }
    assert _subjects(client.get("/me/notifications", headers=people[str(bob)]).json()) == [
        "for bob"]


def test_pages_follow_each_other_newest_first_even_at_the_same_instant(
        client: TestClient, people: PersonHeaders, session_factory: sessionmaker[Session],
        clock: FixedClock) -> None:
    alice = add_person(session_factory, "Alice")
    for n in range(1, 4):
        add_notification(session_factory, clock, alice, f"early {n}")
    clock.advance(timedelta(hours=1))
    for n in range(1, 3):
        add_notification(session_factory, clock, alice, f"late {n}")

    seen: list[str] = []
    params: dict[str, Any] = {"limit": 2}
    pages = 0
    while True:
        body = client.get("/me/notifications", params=params,
                          headers=people[str(alice)]).json()
        pages += 1
        seen += _subjects(body)
        if body["next_cursor"] is None:
            break
        params = {"limit": 2, "cursor": body["next_cursor"]}
    assert pages == 3
    assert sorted(seen[:2]) == ["late 1", "late 2"]
    assert sorted(seen[2:]) == ["early 1", "early 2", "early 3"]
    # A new notice arriving while paging does not shift what is left to read.
    body = client.get("/me/notifications", params={"limit": 2},
                      headers=people[str(alice)]).json()
    clock.advance(timedelta(minutes=1))
    add_notification(session_factory, clock, alice, "newest")
    rest = client.get("/me/notifications", params={"limit": 10, "cursor": body["next_cursor"]},
                      headers=people[str(alice)]).json()
    assert sorted(_subjects(rest)) == ["early 1", "early 2", "early 3"]


def test_unread_filters_and_marking_read(
        client: TestClient, people: PersonHeaders, session_factory: sessionmaker[Session],
        clock: FixedClock) -> None:
    alice = add_person(session_factory, "Alice")
    one = add_notification(session_factory, clock, alice, "one")
    clock.advance(timedelta(minutes=1))
    add_notification(session_factory, clock, alice, "two")
    headers = people[str(alice)]
    clock.advance(timedelta(minutes=1))

    resp = client.post(f"/me/notifications/{one}/read", headers=headers)

    assert resp.status_code == 200, resp.text
    assert resp.json()["read_at"] == "2026-01-15T09:02:00Z"
    unread = client.get("/me/notifications", params={"unread": "true"}, headers=headers).json()
    read = client.get("/me/notifications", params={"unread": "false"}, headers=headers).json()
    assert (_subjects(unread), _subjects(read)) == (["two"], ["one"])


def test_marking_read_twice_keeps_the_first_instant_and_is_audited_once(
        client: TestClient, people: PersonHeaders, session_factory: sessionmaker[Session],
        clock: FixedClock) -> None:
    alice = add_person(session_factory, "Alice")
    one = add_notification(session_factory, clock, alice, "one")
    headers = people[str(alice)]
    first = client.post(f"/me/notifications/{one}/read", headers=headers)
    clock.advance(timedelta(hours=1))
    again = client.post(f"/me/notifications/{one}/read", headers=headers)
    assert (first.status_code, again.status_code) == (200, 200)
    assert first.json()["read_at"] == again.json()["read_at"] == "2026-01-15T09:00:00Z"
    with session_factory() as session:
        events = session.scalars(select(AuditEvent).where(
            AuditEvent.object_id == str(one))).all()
    assert [(e.action, e.object_type, e.actor_type, e.actor_id, e.actor_name)
            for e in events] == [("notification.read", "notification", "identity", str(alice),
                                  "Alice Tester")]
    assert events[0].before == {"recipient_id": str(alice), "kind": "approval.waiting",
                                "read_at": None}
    assert events[0].after == {"recipient_id": str(alice), "kind": "approval.waiting",
                               "read_at": "2026-01-15T09:00:00+00:00"}
    assert events[0].seq is not None


def test_someone_elses_notification_is_not_found_and_stays_unread(
        client: TestClient, people: PersonHeaders, session_factory: sessionmaker[Session],
        clock: FixedClock) -> None:
    alice = add_person(session_factory, "Alice")
    mallory = add_person(session_factory, "Mallory")
    one = add_notification(session_factory, clock, alice, "one")
    resp = client.post(f"/me/notifications/{one}/read", headers=people[str(mallory)])
    assert resp.status_code == 404
    assert resp.headers["content-type"].startswith("application/problem+json")
    assert resp.json()["detail"] == f"notification {one} does not exist"
    unknown = uuid.uuid4()
    assert client.post(f"/me/notifications/{unknown}/read",
                       headers=people[str(mallory)]).status_code == 404
    assert load(session_factory, one).read_at is None
    assert client.get("/me/notifications", headers=people[str(mallory)]).json() == {
        "items": [], "next_cursor": None}


def test_a_person_without_email_still_sees_the_notice_in_app(
        client: TestClient, people: PersonHeaders, session_factory: sessionmaker[Session],
        clock: FixedClock) -> None:
    nomail = add_person(session_factory, "Nomail", email=None)
    add_notification(session_factory, clock, nomail, "hello")
    [item] = client.get("/me/notifications", headers=people[str(nomail)]).json()["items"]
    assert (item["subject"], item["email_state"]) == ("hello", "skipped")


def test_callers_who_are_not_people_are_refused(
        client: TestClient, admin_headers: dict[str, str]) -> None:
    some_id = uuid.uuid4()
    for method, url in (("GET", "/me/notifications"),
                        ("POST", f"/me/notifications/{some_id}/read")):
        assert client.request(method, url).status_code == 401
        assert client.request(method, url, headers=admin_headers).status_code == 403


def test_bad_list_parameters_are_422(
        client: TestClient, people: PersonHeaders, session_factory: sessionmaker[Session]
) -> None:
    headers = people[str(add_person(session_factory, "Alice"))]
    for params in ({"cursor": "not-a-cursor"}, {"limit": "0"}, {"unread": "maybe"},
                   {"colour": "red"}):
        resp = client.get("/me/notifications", params=params, headers=headers)
        assert resp.status_code == 422, params


def test_created_at_is_the_clock_of_notify(session_factory: sessionmaker[Session],
                                           clock: FixedClock) -> None:
    row = load(session_factory, add_notification(
        session_factory, clock, add_person(session_factory, "Alice")))
    assert row.created_at == START
