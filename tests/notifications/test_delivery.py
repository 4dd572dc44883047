"""deliver_pending(): mail through a real SMTP server (aiosmtpd), retries, at most once."""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from idgov.clock import FixedClock
from idgov.config import Settings
from idgov.db.session import unit_of_work
from idgov.models.notifications import Notification
from idgov.notifications import repository
from idgov.notifications.tasks import DeliveryResult, claim, deliver_pending
from tests.conftest import START
from tests.notifications.conftest import (
    SMTP_PASSWORD,
    SMTP_USER,
    SmtpServer,
    add_notification,
    add_person,
    free_port,
    load,
)


def test_a_due_notification_arrives_with_its_recipient_subject_body_and_id(
        session_factory: sessionmaker[Session], clock: FixedClock, smtp_server: SmtpServer,
        mail_settings: Settings) -> None:
    alice = add_person(session_factory, "Alice")
    new_id = add_notification(session_factory, clock, alice, "REQ-2026-000007 waits for you",
                              body="Carol asks for Payables Clerk.\nDecide in idgov.")
    clock.advance(timedelta(minutes=1))

    result = deliver_pending(session_factory, settings=mail_settings, clock=clock)

    assert result == DeliveryResult(sent=1, failed=0, retried=0)
    [mail] = smtp_server.recorder.received
    assert (mail.mail_from, mail.rcpt_tos) == ("idgov@corp.example", ["alice@corp.example"])
    message = mail.message
    assert message["To"] == "alice@corp.example"
    assert message["From"] == "IDGov <idgov@corp.example>"
    assert message["Subject"] == "REQ-2026-000007 waits for you"
    assert message["X-Idgov-Notification"] == str(new_id)
    assert message["Message-ID"] == f"<{new_id}@corp.example>"
    assert message.get_content_type() == "text/plain"
    assert message.get_content() == "Carol asks for Payables Clerk.\nDecide in idgov.\n"
    row = load(session_factory, new_id)
    assert (row.email_state, row.sent_at, row.attempts, row.next_attempt_at, row.last_error) == (
        "sent", START + timedelta(minutes=1), 1, None, None)


def test_a_non_ascii_subject_and_body_arrive_intact(
        session_factory: sessionmaker[Session], clock: FixedClock, smtp_server: SmtpServer,
        mail_settings: Settings) -> None:
    zoe = add_person(session_factory, "Zoe")
    add_notification(session_factory, clock, zoe, "Accès accordé — Ödön's request",
                     body="Grüße: your access to «Payroll» ends in 7 days.")
    assert deliver_pending(session_factory, settings=mail_settings, clock=clock).sent == 1
    [mail] = smtp_server.recorder.received
    assert mail.message["Subject"] == "Accès accordé — Ödön's request"
    assert mail.message.get_content() == "Grüße: your access to «Payroll» ends in 7 days.\n"


def test_sent_and_skipped_rows_are_never_mailed_again(
        session_factory: sessionmaker[Session], clock: FixedClock, smtp_server: SmtpServer,
        mail_settings: Settings) -> None:
    alice = add_person(session_factory, "Alice")
    nomail = add_person(session_factory, "Nomail", email=None)
    add_notification(session_factory, clock, alice)
    skipped = add_notification(session_factory, clock, nomail)
    assert deliver_pending(session_factory, settings=mail_settings, clock=clock).sent == 1
    clock.advance(timedelta(days=1))
    assert deliver_pending(session_factory, settings=mail_settings, clock=clock) == \
        DeliveryResult()
    assert len(smtp_server.recorder.received) == 1
    assert load(session_factory, skipped).email_state == "skipped"


def test_a_batch_uses_one_connection_and_respects_the_limit(
        session_factory: sessionmaker[Session], clock: FixedClock, smtp_server: SmtpServer,
        mail_settings: Settings) -> None:
    people = [add_person(session_factory, name) for name in ("Ann", "Ben", "Cat")]
    for person in people:
        add_notification(session_factory, clock, person)
    first = deliver_pending(session_factory, settings=mail_settings, clock=clock, limit=2)
    second = deliver_pending(session_factory, settings=mail_settings, clock=clock, limit=2)
    assert (first, second) == (DeliveryResult(sent=2), DeliveryResult(sent=1))
    assert sorted(r for m in smtp_server.recorder.received for r in m.rcpt_tos) == [
        "ann@corp.example", "ben@corp.example", "cat@corp.example"]


def test_a_refused_recipient_is_retried_with_backoff_then_failed(
        session_factory: sessionmaker[Session], clock: FixedClock, smtp_server: SmtpServer,
        mail_settings: Settings) -> None:
    alice = add_person(session_factory, "Alice")
    bob = add_person(session_factory, "Bob")
    smtp_server.recorder.refuse["bob@corp.example"] = "451 4.3.0 Mailbox busy, try later"
    to_alice = add_notification(session_factory, clock, alice)
    to_bob = add_notification(session_factory, clock, bob)

    # max attempts 3: tries at +0, +2 min, +4 min after that; the wait doubles each time.
    assert deliver_pending(session_factory, settings=mail_settings, clock=clock) == \
        DeliveryResult(sent=1, retried=1)
    row = load(session_factory, to_bob)
    assert (row.email_state, row.attempts, row.next_attempt_at) == (
        "pending", 1, START + timedelta(minutes=2))
    assert row.last_error == ("recipient refused: bob@corp.example: "
                              "451 4.3.0 Mailbox busy, try later")

    clock.advance(timedelta(minutes=1))  # not due yet
    assert deliver_pending(session_factory, settings=mail_settings, clock=clock) == \
        DeliveryResult()
    clock.advance(timedelta(minutes=1))
    assert deliver_pending(session_factory, settings=mail_settings, clock=clock) == \
        DeliveryResult(retried=1)
    row = load(session_factory, to_bob)
    assert (row.attempts, row.next_attempt_at) == (2, START + timedelta(minutes=2 + 4))

    clock.advance(timedelta(minutes=4))
    assert deliver_pending(session_factory, settings=mail_settings, clock=clock) == \
        DeliveryResult(failed=1)
    row = load(session_factory, to_bob)
    assert (row.email_state, row.attempts, row.next_attempt_at, row.sent_at) == (
        "failed", 3, None, None)
    assert "451 4.3.0" in (row.last_error or "")
    clock.advance(timedelta(days=1))
    assert deliver_pending(session_factory, settings=mail_settings, clock=clock) == \
        DeliveryResult()
    assert [m.rcpt_tos for m in smtp_server.recorder.received] == [["alice@corp.example"]]
    assert load(session_factory, to_alice).email_state == "sent"


def test_a_recipient_refused_for_good_fails_at_once(
        session_factory: sessionmaker[Session], clock: FixedClock, smtp_server: SmtpServer,
        mail_settings: Settings) -> None:
    gone = add_person(session_factory, "Gone")
    smtp_server.recorder.refuse["gone@corp.example"] = "550 5.1.1 No such user"
    new_id = add_notification(session_factory, clock, gone)
    assert deliver_pending(session_factory, settings=mail_settings, clock=clock) == \
        DeliveryResult(failed=1)
    row = load(session_factory, new_id)
    assert (row.email_state, row.attempts, row.last_error) == (
        "failed", 1, "recipient refused: gone@corp.example: 550 5.1.1 No such user")


def test_an_unreachable_server_reschedules_the_whole_batch(
        session_factory: sessionmaker[Session], clock: FixedClock, tmp_path: Path) -> None:
    settings = Settings(var_dir=tmp_path / "var", smtp_host="127.0.0.1", smtp_port=free_port(),
                        smtp_timeout_seconds=5, notification_max_attempts=2)
    ids = [add_notification(session_factory, clock, add_person(session_factory, name))
           for name in ("Ann", "Ben")]
    assert deliver_pending(session_factory, settings=settings, clock=clock) == \
        DeliveryResult(retried=2)
    for new_id in ids:
        row = load(session_factory, new_id)
        assert (row.email_state, row.attempts, row.next_attempt_at) == (
            "pending", 1, START + timedelta(minutes=2))
        assert (row.last_error or "").startswith("ConnectionRefusedError")
    clock.advance(timedelta(minutes=2))
    assert deliver_pending(session_factory, settings=settings, clock=clock) == \
        DeliveryResult(failed=2)
    assert {load(session_factory, i).email_state for i in ids} == {"failed"}


def test_the_server_recovering_delivers_a_retried_message(
        session_factory: sessionmaker[Session], clock: FixedClock, smtp_server: SmtpServer,
        mail_settings: Settings) -> None:
    bob = add_person(session_factory, "Bob")
    smtp_server.recorder.refuse["bob@corp.example"] = "421 4.7.0 Try again later"
    new_id = add_notification(session_factory, clock, bob)
    assert deliver_pending(session_factory, settings=mail_settings, clock=clock).retried == 1
    smtp_server.recorder.refuse.clear()
    clock.advance(timedelta(minutes=2))
    assert deliver_pending(session_factory, settings=mail_settings, clock=clock).sent == 1
    row = load(session_factory, new_id)
    assert (row.email_state, row.attempts, row.sent_at) == (
        "sent", 2, START + timedelta(minutes=2))
    [mail] = smtp_server.recorder.received
    assert mail.message["X-Idgov-Notification"] == str(new_id)


def test_smtp_login_is_used_and_a_refused_login_leaves_no_password_behind(
        session_factory: sessionmaker[Session], clock: FixedClock,
        smtp_auth_server: SmtpServer, tmp_path: Path) -> None:
    def settings(password: str) -> Settings:
        return Settings(var_dir=tmp_path / "var", smtp_host="127.0.0.1",
                        smtp_port=smtp_auth_server.port, smtp_username=SMTP_USER,
                        smtp_password=password, smtp_timeout_seconds=5)

    alice = add_person(session_factory, "Alice")
    new_id = add_notification(session_factory, clock, alice)
    wrong = "Wr0ng-" + SMTP_PASSWORD
    assert deliver_pending(session_factory, settings=settings(wrong), clock=clock) == \
        DeliveryResult(retried=1)
    row = load(session_factory, new_id)
    assert (row.last_error or "").startswith("SMTP login refused: 535")
    assert wrong not in (row.last_error or "") and SMTP_PASSWORD not in (row.last_error or "")
    assert "s3cret" not in repr(settings(wrong)) and smtp_auth_server.recorder.received == []

    clock.advance(timedelta(minutes=2))
    assert deliver_pending(session_factory, settings=settings(SMTP_PASSWORD), clock=clock) == \
        DeliveryResult(sent=1)
    assert [m.rcpt_tos for m in smtp_auth_server.recorder.received] == [["alice@corp.example"]]


def test_without_an_smtp_host_nothing_is_claimed(
        session_factory: sessionmaker[Session], clock: FixedClock, settings: Settings) -> None:
    assert settings.smtp_host is None
    new_id = add_notification(session_factory, clock, add_person(session_factory, "Alice"))
    assert deliver_pending(session_factory, settings=settings, clock=clock) == DeliveryResult()
    row = load(session_factory, new_id)
    assert (row.email_state, row.attempts, row.next_attempt_at) == ("pending", 0, START)


# At most once ------------------------------------------------------------------------------------


def test_rows_claimed_by_one_deliverer_are_not_sent_by_another(
        session_factory: sessionmaker[Session], clock: FixedClock, smtp_server: SmtpServer,
        mail_settings: Settings) -> None:
    ids = [add_notification(session_factory, clock, add_person(session_factory, name))
           for name in ("Ann", "Ben")]
    taken = claim(session_factory, now=clock.now(), lease=timedelta(minutes=15), limit=100)
    assert sorted(m.id for m in taken) == sorted(i for i in ids if i is not None)
    assert [m.attempts for m in taken] == [1, 1]

    assert deliver_pending(session_factory, settings=mail_settings, clock=clock) == \
        DeliveryResult()
    assert smtp_server.recorder.received == []

    # The first deliverer died: after its lease the rows are due again, and sent once.
    clock.advance(timedelta(minutes=15))
    assert deliver_pending(session_factory, settings=mail_settings, clock=clock) == \
        DeliveryResult(sent=2)
    assert len(smtp_server.recorder.received) == 2
    assert {load(session_factory, i).attempts for i in ids} == {2}


@pytest.mark.postgres_only
def test_two_concurrent_claims_on_postgresql_take_disjoint_rows(
        session_factory: sessionmaker[Session], clock: FixedClock) -> None:
    ids = {add_notification(session_factory, clock, add_person(session_factory, f"P{n}"))
           for n in range(5)}
    lease_until = clock.now() + timedelta(minutes=15)
    first = session_factory()
    second = session_factory()
    try:
        # The first claim is not committed yet: its rows are locked, the second skips them.
        a = repository.claim_due(first, now=clock.now(), lease_until=lease_until, limit=3)
        b = repository.claim_due(second, now=clock.now(), lease_until=lease_until, limit=3)
        first.commit()
        second.commit()
    finally:
        first.close()
        second.close()
    assert (len(a), len(b)) == (3, 2)
    assert {m.id for m in a} | {m.id for m in b} == ids
    with session_factory() as session:
        attempts = session.scalars(select(Notification.attempts)).all()
    assert sorted(attempts) == [1, 1, 1, 1, 1]


def test_a_claim_is_lost_to_nobody_when_it_rolls_back(
        session_factory: sessionmaker[Session], clock: FixedClock) -> None:
    new_id = add_notification(session_factory, clock, add_person(session_factory, "Ann"))
    with pytest.raises(RuntimeError), unit_of_work(session_factory) as session:
        assert len(repository.claim_due(session, now=clock.now(),
                                        lease_until=clock.now() + timedelta(minutes=15),
                                        limit=10)) == 1
        raise RuntimeError("crash before commit")
    row = load(session_factory, new_id)
    assert (row.attempts, row.next_attempt_at) == (0, START)
    assert uuid.UUID(str(new_id)) == row.id
