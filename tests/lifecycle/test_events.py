"""Lifecycle events: a leaver loses access at once (accounts disabled before memberships are
revoked), their accounts are deleted after the retention period, future-dated events wait,
a prehire starts on time, a rehire gets its accounts back; nothing runs twice."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from idgov.db.session import unit_of_work
from idgov.lifecycle import events, tasks
from idgov.models.assignment import Assignment
from idgov.models.audit import AuditEvent
from idgov.models.hr import HrSource
from tests.lifecycle.events_world import ACTOR, RETENTION, Life, life_fixture

__all__ = ["life_fixture"]


def test_a_leaver_is_disabled_first_then_revoked_and_deleted_after_the_retention(
        life: Life) -> None:
    env = life.env
    env.assign("Alice", "VPN", "ERP-Read")
    env.run()
    native = env.account_of("Alice")
    assert env.target.members("cn=VPN") == {native}

    life.terminate("Alice")

    assert life.state("Alice") == "terminated"
    taking = life.ops("Alice", state="pending")
    assert [op.action for op in taking] == ["disable_account", "revoke", "revoke"]
    assert taking[0].cause == "lifecycle"
    assert taking[0].ordinal < min(op.ordinal for op in taking[1:])
    with unit_of_work(life.factory) as session:
        held = session.scalars(select(Assignment)
                               .where(Assignment.identity_id == life.ids["Alice"])).all()
        assert held and all(a.revoked_at == life.clock.now() for a in held)
        assert {a.revoke_reason for a in held} == {"leaver: resigned"}
    [deletion] = [e for e in life.events("Alice") if e.state == "scheduled"]
    assert (deletion.kind, deletion.due_at) == ("delete_accounts",
                                                life.clock.now() + RETENTION)

    env.run()
    calls = [c.method for c in env.target.calls]
    assert calls[-3:] == ["disable_account", "revoke", "revoke"]
    info = env.target.account("talice")
    assert info is not None and not info.enabled
    assert env.target.members("cn=VPN") == set()
    assert [a.status for a in life.accounts("Alice")] == ["disabled"]

    life.clock.advance(RETENTION - timedelta(minutes=1))
    assert life.process_due() == 0
    life.clock.advance(timedelta(minutes=1))
    assert life.process_due() == 1
    [delete] = life.ops("Alice", action="delete_account")
    assert (delete.cause, delete.cause_id) == ("lifecycle", str(deletion.id))
    env.run()
    assert env.target.account("talice") is None
    assert [a.status for a in life.accounts("Alice")] == ["deleted"]
    assert [e.state for e in life.events("Alice")] == ["done"]
    assert life.process_due() == 0


def test_a_leavers_access_not_yet_started_never_reaches_the_target(life: Life) -> None:
    env = life.env
    env.assign("Alice", "VPN")
    env.run()
    later = life.clock.now() + timedelta(days=3)
    env.assign("Alice", "ERP-Post", valid_from=later.isoformat())
    [future] = life.ops("Alice", action="grant", state="pending")

    life.terminate("Alice")

    [cancelled] = [op for op in life.ops("Alice") if op.id == future.id]
    assert cancelled.state == "cancelled"
    assert not life.ops("Alice", action="revoke", entitlement_id=future.entitlement_id)
    life.clock.advance(timedelta(days=4))
    env.run()
    assert env.target.members("cn=ERP-Post") == set()
    assert not [c for c in env.target.calls if c.method == "grant" and "cn=ERP-Post" in c.args]


def test_a_termination_without_accounts_or_access_still_schedules_the_deletion(
        life: Life) -> None:
    life.terminate("Carol", retention=timedelta(days=5))

    assert life.state("Carol") == "terminated"
    assert life.ops("Carol") == []
    [deletion] = life.events("Carol")
    assert deletion.due_at == life.clock.now() + timedelta(days=5)
    life.clock.advance(timedelta(days=5))
    assert life.process_due() == 1
    assert life.ops("Carol") == []


def test_a_future_dated_termination_waits_for_its_time_and_uses_the_sources_retention(
        life: Life) -> None:
    env = life.env
    env.assign("Bob", "VPN")
    env.run()
    with unit_of_work(life.factory) as session:
        source = HrSource(name="workday", kind="csv", account_retention_days=7)
        session.add(source)
        session.flush()
        source_id = source.id
    life.set("Bob", hr_source_id=source_id)
    due = life.clock.now() + timedelta(days=2)
    with unit_of_work(life.factory) as session:
        events.schedule(session, identity_id=life.ids["Bob"], kind="terminate", due_at=due,
                        reason="end of contract", clock=life.clock)

    assert life.process_due() == 0
    life.clock.advance(timedelta(days=1, hours=23, minutes=59))
    assert life.process_due() == 0
    assert life.state("Bob") == "active"
    assert life.ops("Bob", action="disable_account") == []

    life.clock.advance(timedelta(minutes=1))
    assert life.process_due() == 1

    assert life.state("Bob") == "terminated"
    done, deletion = life.events("Bob")
    assert (done.kind, done.state, done.done_at) == ("terminate", "done", due)
    assert done.detail["outcome"] == "terminated"
    assert (deletion.kind, deletion.state, deletion.due_at) == (
        "delete_accounts", "scheduled", due + timedelta(days=7))
    assert [op.action for op in life.ops("Bob", state="pending")] == [
        "disable_account", "revoke"]


def test_a_prehire_becomes_active_at_the_start_date(life: Life) -> None:
    life.set("Carol", lifecycle_state="prehire")
    start = life.clock.now() + timedelta(days=10)
    with unit_of_work(life.factory) as session:
        events.schedule(session, identity_id=life.ids["Carol"], kind="activate",
                        due_at=start, reason="hire date", clock=life.clock)

    life.clock.advance(timedelta(days=9))
    assert life.process_due() == 0
    assert life.state("Carol") == "prehire"
    life.clock.advance(timedelta(days=1))
    assert life.process_due() == 1
    assert life.state("Carol") == "active"
    with unit_of_work(life.factory) as session:
        actions = session.scalars(select(AuditEvent.action)
                                  .where(AuditEvent.object_id == str(life.ids["Carol"]))
                                  .order_by(AuditEvent.seq)).all()
    assert "identity.activate" in actions


def test_a_rehire_cancels_the_deletion_and_enables_the_disabled_accounts(life: Life) -> None:
    env = life.env
    env.assign("Alice", "VPN")
    env.run()
    life.terminate("Alice")
    env.run()
    assert [a.status for a in life.accounts("Alice")] == ["disabled"]

    life.clock.advance(timedelta(days=3))
    with unit_of_work(life.factory) as session:
        events.reinstate(session, identity_id=life.ids["Alice"], actor=ACTOR,
                         clock=life.clock, prehire=False)

    assert life.state("Alice") == "active"
    assert [(e.kind, e.state) for e in life.events("Alice")] == [
        ("delete_accounts", "cancelled")]
    [enable] = life.ops("Alice", action="enable_account")
    assert (enable.cause, enable.state) == ("lifecycle", "pending")
    env.run()
    info = env.target.account("talice")
    assert info is not None and info.enabled
    assert [a.status for a in life.accounts("Alice")] == ["active"]
    life.clock.advance(RETENTION)
    assert life.process_due() == 0
    assert life.ops("Alice", action="delete_account") == []


def test_a_rehire_before_the_disable_ran_cancels_it_instead_of_enabling(life: Life) -> None:
    env = life.env
    env.assign("Alice", "VPN")
    env.run()
    life.terminate("Alice")
    with unit_of_work(life.factory) as session:
        events.reinstate(session, identity_id=life.ids["Alice"], actor=ACTOR,
                         clock=life.clock, prehire=True)

    assert life.state("Alice") == "prehire"
    [disable] = life.ops("Alice", action="disable_account")
    assert disable.state == "cancelled"
    assert life.ops("Alice", action="enable_account") == []
    env.run()
    info = env.target.account("talice")
    assert info is not None and info.enabled


def test_a_prehire_rehire_gets_its_disabled_accounts_back_when_it_starts(life: Life) -> None:
    env = life.env
    env.assign("Alice", "VPN")
    env.run()
    life.terminate("Alice")
    env.run()
    with unit_of_work(life.factory) as session:
        events.reinstate(session, identity_id=life.ids["Alice"], actor=ACTOR,
                         clock=life.clock, prehire=True)
        events.schedule(session, identity_id=life.ids["Alice"], kind="activate",
                        due_at=life.clock.now() + timedelta(days=14), reason="rehired",
                        clock=life.clock)
    assert life.ops("Alice", action="enable_account") == []

    life.clock.advance(timedelta(days=14))
    assert life.process_due() == 1
    assert life.state("Alice") == "active"
    assert len(life.ops("Alice", action="enable_account")) == 1
    env.run()
    info = env.target.account("talice")
    assert info is not None and info.enabled


def test_events_run_once_and_a_second_termination_changes_nothing(life: Life) -> None:
    env = life.env
    env.assign("Alice", "VPN")
    env.run()
    due = life.clock.now() + timedelta(hours=1)
    with unit_of_work(life.factory) as session:
        first = events.schedule(session, identity_id=life.ids["Alice"], kind="terminate",
                                due_at=due, reason="resigned", clock=life.clock)
        again = events.schedule(session, identity_id=life.ids["Alice"], kind="terminate",
                                due_at=due, reason="resigned", clock=life.clock)
        assert again.id == first.id
    life.clock.advance(timedelta(hours=2))

    assert life.process_due() == 1
    assert life.process_due() == 0
    recorded = len(life.ops("Alice"))
    life.terminate("Alice")
    assert len(life.ops("Alice")) == recorded
    assert [(e.kind, e.state) for e in life.events("Alice")] == [
        ("terminate", "done"), ("delete_accounts", "scheduled")]


def test_a_terminate_event_of_someone_already_terminated_is_done_without_effect(
        life: Life) -> None:
    due = life.clock.now() + timedelta(days=1)
    with unit_of_work(life.factory) as session:
        event = events.schedule(session, identity_id=life.ids["Bob"], kind="terminate",
                                due_at=due, reason="planned", clock=life.clock)
        event_id = event.id
    # Someone else terminated Bob already and the event survived (e.g. written by hand).
    life.set("Bob", lifecycle_state="terminated")
    life.clock.advance(timedelta(days=1))

    assert life.process_due() == 1

    [done] = [e for e in life.events("Bob") if e.id == event_id]
    assert (done.state, done.detail["outcome"]) == ("done", "skipped: already terminated")
    assert life.ops("Bob") == []


def test_rescheduling_replaces_the_earlier_event_of_the_same_kind(life: Life) -> None:
    now = life.clock.now()
    with unit_of_work(life.factory) as session:
        events.schedule(session, identity_id=life.ids["Bob"], kind="terminate",
                        due_at=now + timedelta(days=5), reason="planned", clock=life.clock)
        events.schedule(session, identity_id=life.ids["Bob"], kind="terminate",
                        due_at=now + timedelta(days=2), reason="moved earlier",
                        clock=life.clock)
        assert events.cancel_scheduled(session, identity_id=life.ids["Bob"],
                                       kinds=("activate",), reason="none",
                                       actor=ACTOR, clock=life.clock) == 0

    assert sorted((e.state, e.due_at) for e in life.events("Bob")) == [
        ("cancelled", now + timedelta(days=5)), ("scheduled", now + timedelta(days=2))]


def test_the_periodic_job_runs_due_events_in_batches_of_their_own(life: Life) -> None:
    due = life.clock.now() + timedelta(minutes=5)
    with unit_of_work(life.factory) as session:
        for name in ("Alice", "Bob", "Carol"):
            events.schedule(session, identity_id=life.ids[name], kind="terminate",
                            due_at=due, reason="site closed", clock=life.clock)
    assert tasks.run_due_events(life.factory, clock=life.clock) == 0

    life.clock.advance(timedelta(minutes=5))
    assert tasks.run_due_events(life.factory, clock=life.clock, batch_size=2) == 3
    assert {life.state(n) for n in ("Alice", "Bob", "Carol")} == {"terminated"}
    assert tasks.run_due_events(life.factory, clock=life.clock) == 0
