"""notify(): the outbox row other modules add in their own transaction."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from idgov.clock import FixedClock
from idgov.db.session import unit_of_work
from idgov.errors import InvalidInput
from idgov.models.audit import AuditEvent
from idgov.models.notifications import Notification
from idgov.notifications.service import notify
from tests.conftest import START
from tests.notifications.conftest import add_notification, add_person, load


def test_a_notification_is_pending_mail_to_the_address_the_person_has_now(
        session_factory: sessionmaker[Session], clock: FixedClock) -> None:
    alice = add_person(session_factory, "Alice")
    new_id = add_notification(session_factory, clock, alice, "REQ-2026-000001 waits for you",
                              body="Approve or reject it in idgov.")
    row = load(session_factory, new_id)
    assert (row.recipient_id, row.email, row.kind, row.subject, row.body) == (
        alice, "alice@corp.example", "approval.waiting", "REQ-2026-000001 waits for you",
        "Approve or reject it in idgov.")
    assert (row.object_type, row.object_id) == ("approval_step", "step-1")
    assert (row.email_state, row.attempts, row.created_at, row.next_attempt_at) == (
        "pending", 0, START, START)
    assert (row.read_at, row.sent_at, row.last_error) == (None, None, None)


def test_a_person_without_email_gets_it_in_app_only(
        session_factory: sessionmaker[Session], clock: FixedClock) -> None:
    nomail = add_person(session_factory, "Nomail", email=None)
    row = load(session_factory, add_notification(session_factory, clock, nomail))
    assert (row.email, row.email_state, row.next_attempt_at) == (None, "skipped", None)


def test_a_used_dedupe_key_adds_nothing_even_after_the_first_was_read(
        session_factory: sessionmaker[Session], clock: FixedClock) -> None:
    bob = add_person(session_factory, "Bob")
    first = add_notification(session_factory, clock, bob, "Expires soon",
                             kind="grant.expiring", dedupe_key="grant.expiring:a1:bob")
    assert first is not None
    with unit_of_work(session_factory) as session:
        row = session.get(Notification, first)
        assert row is not None
        row.read_at = clock.now()
    clock.advance(timedelta(days=1))
    again = add_notification(session_factory, clock, bob, "Expires soon",
                             kind="grant.expiring", dedupe_key="grant.expiring:a1:bob")
    other = add_notification(session_factory, clock, bob, "Expires soon",
                             kind="grant.expiring", dedupe_key="grant.expiring:a2:bob")
    assert again is None and other is not None
    with session_factory() as session:
        keys = session.scalars(select(Notification.dedupe_key)
                               .order_by(Notification.created_at)).all()
    assert keys == ["grant.expiring:a1:bob", "grant.expiring:a2:bob"]


def test_the_same_dedupe_key_twice_in_one_transaction_adds_one(
        session_factory: sessionmaker[Session], clock: FixedClock) -> None:
    bob = add_person(session_factory, "Bob")
    with unit_of_work(session_factory) as session:
        results = [notify(session, recipient_id=bob, kind="grant.expiring", subject="s",
                          body="b", dedupe_key="k", clock=clock) for _ in range(2)]
    assert results[0] is not None and results[1] is None
    with session_factory() as session:
        assert session.scalar(select(func.count()).select_from(Notification)) == 1


def test_without_dedupe_key_every_call_adds_a_message(
        session_factory: sessionmaker[Session], clock: FixedClock) -> None:
    bob = add_person(session_factory, "Bob")
    ids = {add_notification(session_factory, clock, bob) for _ in range(3)}
    assert len(ids) == 3 and None not in ids


def test_the_subject_is_one_line(session_factory: sessionmaker[Session],
                                 clock: FixedClock) -> None:
    bob = add_person(session_factory, "Bob")
    row = load(session_factory, add_notification(
        session_factory, clock, bob, "Request\r\nBcc: victim@example.com  approved"))
    assert row.subject == "Request Bcc: victim@example.com approved"


def test_notifying_writes_no_audit_event(session_factory: sessionmaker[Session],
                                         clock: FixedClock) -> None:
    bob = add_person(session_factory, "Bob")
    with session_factory() as session:
        before = session.scalar(select(func.count()).select_from(AuditEvent))
    add_notification(session_factory, clock, bob)
    with session_factory() as session:
        assert session.scalar(select(func.count()).select_from(AuditEvent)) == before


def test_an_unknown_recipient_is_refused(session_factory: sessionmaker[Session],
                                        clock: FixedClock) -> None:
    with session_factory() as session, pytest.raises(InvalidInput) as raised:
        notify(session, recipient_id=uuid.uuid4(), kind="request.submitted", subject="s",
               body="b", clock=clock)
    assert [e.field for e in raised.value.errors] == ["recipient_id"]
