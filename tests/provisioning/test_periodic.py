"""The periodic jobs the workers run: first aggregation, scheduled reconciliation, the request
sweep; what is due is decided by the clock, never by sleeping."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session, sessionmaker

from connectors.base import Connector
from connectors.memory import MemoryTarget
from idgov.clock import FixedClock
from idgov.config import Settings
from idgov.db.session import unit_of_work
from idgov.models.application import Account, Application
from idgov.models.assignment import Assignment
from idgov.models.provisioning import ReconciliationRun
from idgov.provisioning import periodic
from idgov.provisioning.worker import Worker
from idgov.reconciliation import service as reconciliation
from tests.reconciliation.helpers import Lab


@pytest.fixture
def new_target() -> Iterator[Callable[[], MemoryTarget]]:
    made: list[MemoryTarget] = []

    def make() -> MemoryTarget:
        found = MemoryTarget.get(f"periodic-{uuid.uuid4().hex[:8]}")
        made.append(found)
        return found

    yield make
    for found in made:
        found.reset()
    MemoryTarget.forget_all()


def add_application(factory: sessionmaker[Session], name: str, kind: str = "memory",
                    **settings: Any) -> uuid.UUID:
    with unit_of_work(factory) as session:
        row = Application(name=name, connector_kind=kind, settings=settings)
        session.add(row)
        session.flush()
        return row.id


def runs(factory: sessionmaker[Session], application_id: uuid.UUID) -> list[tuple[str, str]]:
    """(kind, state) of the application's runs, oldest first."""
    with unit_of_work(factory) as session:
        rows = session.execute(
            select(ReconciliationRun.kind, ReconciliationRun.state)
            .where(ReconciliationRun.application_id == application_id)
            .order_by(ReconciliationRun.started_at, ReconciliationRun.kind))
        return [(kind, state) for kind, state in rows]


def all_runs(factory: sessionmaker[Session]) -> int:
    with unit_of_work(factory) as session:
        return session.scalar(select(func.count()).select_from(ReconciliationRun)) or 0


def done(counts: dict[str, int]) -> dict[str, int]:
    """The counts that are not zero."""
    return {key: value for key, value in counts.items() if value}


def test_first_run_aggregates_a_never_aggregated_application_exactly_once(
        session_factory: sessionmaker[Session], clock: FixedClock, settings: Settings,
        new_target: Callable[[], MemoryTarget]) -> None:
    target = new_target()
    target.add_entitlement("g-staff", "Staff")
    ref = target.add_account("jdoe", {"employeeNumber": "E1", "mail": "jdoe@example.com"})
    target.add_member("g-staff", ref.native_id)
    directory = add_application(session_factory, "Directory", target=target.name)
    lab = Lab(session_factory, clock, target, directory, {})
    lab.person("E1")
    # Neither a manual application nor one whose connector cannot list is aggregated.
    manual = add_application(session_factory, "Badges", kind="manual")
    blind = add_application(session_factory, "Blind", target=new_target().name,
                            capabilities=["create_account", "grant"])

    first = periodic.run_due_jobs(session_factory, settings=settings, clock=clock)

    assert done(first) == {"aggregated": 1, "reconciled": 1}
    assert runs(session_factory, directory) == [("aggregation", "succeeded"),
                                                ("reconciliation", "succeeded")]
    assert lab.accounts() == {"jdoe": ("E1", "active")}
    assert lab.assignments() == {("E1", "g-staff", "aggregation")}
    assert runs(session_factory, manual) == []
    assert runs(session_factory, blind) == []

    clock.advance(timedelta(minutes=5))
    second = periodic.run_due_jobs(session_factory, settings=settings, clock=clock)

    assert done(second) == {}
    assert runs(session_factory, directory) == [("aggregation", "succeeded"),
                                                ("reconciliation", "succeeded")]
    assert target.count("list_accounts") == 2  # one aggregation, one reconciliation


def test_a_target_that_is_down_is_aggregated_once_it_is_back(
        session_factory: sessionmaker[Session], clock: FixedClock, settings: Settings,
        new_target: Callable[[], MemoryTarget]) -> None:
    target = new_target()
    target.add_account("jdoe", {"employeeNumber": "E1"})
    directory = add_application(session_factory, "Directory", target=target.name)
    target.down = True

    down = periodic.run_due_jobs(session_factory, settings=settings, clock=clock)

    assert done(down) == {"unreachable": 1}
    assert runs(session_factory, directory) == []
    assert target.count("list_accounts", outcome=None) == 0

    target.down = False
    clock.advance(timedelta(minutes=1))
    back = periodic.run_due_jobs(session_factory, settings=settings, clock=clock)

    assert done(back) == {"aggregated": 1, "reconciled": 1}
    assert runs(session_factory, directory) == [("aggregation", "succeeded"),
                                                ("reconciliation", "succeeded")]


def test_reconciliation_runs_again_only_after_the_interval(
        session_factory: sessionmaker[Session], clock: FixedClock, tmp_path: Any,
        new_target: Callable[[], MemoryTarget]) -> None:
    settings = Settings(var_dir=tmp_path / "var", reconcile_interval_hours=24)
    target = new_target()
    directory = add_application(session_factory, "Directory", target=target.name)

    periodic.run_due_jobs(session_factory, settings=settings, clock=clock)
    clock.advance(timedelta(hours=23, minutes=59))
    early = periodic.run_due_jobs(session_factory, settings=settings, clock=clock)
    clock.advance(timedelta(minutes=1))
    due = periodic.run_due_jobs(session_factory, settings=settings, clock=clock)
    clock.advance(timedelta(hours=1))
    after = periodic.run_due_jobs(session_factory, settings=settings, clock=clock)

    assert (early["reconciled"], due["reconciled"], after["reconciled"]) == (0, 1, 0)
    assert runs(session_factory, directory) == [("aggregation", "succeeded"),
                                                ("reconciliation", "succeeded"),
                                                ("reconciliation", "succeeded")]
    with unit_of_work(session_factory) as session:
        remediating = session.scalar(select(func.count()).select_from(ReconciliationRun)
                                     .where(ReconciliationRun.remediate.is_(True)))
    assert remediating == 0  # report only


def test_a_zero_interval_disables_scheduled_reconciliation(
        session_factory: sessionmaker[Session], clock: FixedClock, tmp_path: Any,
        new_target: Callable[[], MemoryTarget]) -> None:
    settings = Settings(var_dir=tmp_path / "var", reconcile_interval_hours=0)
    directory = add_application(session_factory, "Directory", target=new_target().name)

    periodic.run_due_jobs(session_factory, settings=settings, clock=clock)
    clock.advance(timedelta(days=30))
    periodic.run_due_jobs(session_factory, settings=settings, clock=clock)

    assert runs(session_factory, directory) == [("aggregation", "succeeded")]


def grant_until(lab: Lab, minutes: int) -> uuid.UUID:
    lab.person("E1")
    entitlement = lab.entitlement("g-temp")
    return lab.assign("E1", entitlement,
                      valid_until=lab.clock.now() + timedelta(minutes=minutes))


def revoked(factory: sessionmaker[Session], assignment_id: uuid.UUID) -> bool:
    with unit_of_work(factory) as session:
        row = session.get(Assignment, assignment_id)
        assert row is not None
        return row.revoked_at is not None


def test_the_sweep_runs_every_interval(
        session_factory: sessionmaker[Session], clock: FixedClock, tmp_path: Any,
        new_target: Callable[[], MemoryTarget]) -> None:
    settings = Settings(var_dir=tmp_path / "var", sweep_interval_minutes=15)
    target = new_target()
    lab = Lab(session_factory, clock, target,
              add_application(session_factory, "Directory", target=target.name), {})
    grant = grant_until(lab, minutes=10)

    expired = []
    for step in range(4):  # at +0, +5, +10 and +15 minutes
        expired.append(periodic.run_due_jobs(session_factory, settings=settings,
                                             clock=clock)["expired"])
        if step == 2:
            assert not revoked(session_factory, grant)  # ended at +10, not swept until +15
        clock.advance(timedelta(minutes=5))

    assert expired == [0, 0, 0, 1]
    assert revoked(session_factory, grant)


def test_a_job_that_raises_does_not_stop_the_others(
        session_factory: sessionmaker[Session], clock: FixedClock, settings: Settings,
        new_target: Callable[[], MemoryTarget], monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    target = new_target()
    add_application(session_factory, "Broken", target=new_target().name)
    directory = add_application(session_factory, "Directory", target=target.name)
    lab = Lab(session_factory, clock, target, directory, {})
    grant = grant_until(lab, minutes=-1)
    real = reconciliation.connector_for

    def connector_for(application: Application, settings: Settings) -> Connector:
        if application.name == "Broken":
            raise RuntimeError("password=hunter2 in the settings")
        return real(application, settings)

    monkeypatch.setattr(reconciliation, "connector_for", connector_for)

    with caplog.at_level(logging.ERROR, logger="idgov.provisioning.periodic"):
        counts = periodic.run_due_jobs(session_factory, settings=settings, clock=clock)

    assert done(counts) == {"aggregated": 1, "reconciled": 1, "expired": 1, "errors": 1}
    assert runs(session_factory, directory) == [("aggregation", "succeeded"),
                                                ("reconciliation", "succeeded")]
    assert revoked(session_factory, grant)
    assert "RuntimeError" in caplog.text
    assert "hunter2" not in caplog.text


def test_a_sweep_part_that_raises_does_not_stop_the_other_parts(
        session_factory: sessionmaker[Session], clock: FixedClock, settings: Settings,
        new_target: Callable[[], MemoryTarget], monkeypatch: pytest.MonkeyPatch) -> None:
    target = new_target()
    lab = Lab(session_factory, clock, target,
              add_application(session_factory, "Directory", target=target.name), {})
    grant = grant_until(lab, minutes=-1)

    def broken(*_args: Any, **_kwargs: Any) -> int:
        raise RuntimeError("escalations are broken")

    monkeypatch.setattr(periodic, "escalate_overdue", broken)

    counts = periodic.run_due_jobs(session_factory, settings=settings, clock=clock)

    assert (counts["errors"], counts["expired"]) == (1, 1)
    assert revoked(session_factory, grant)


def test_the_worker_runs_the_jobs_at_most_once_a_minute(
        session_factory: sessionmaker[Session], clock: FixedClock, settings: Settings,
        tmp_path: Any, new_target: Callable[[], MemoryTarget]) -> None:
    add_application(session_factory, "Directory", target=new_target().name)
    worker = Worker(session_factory, settings, clock)

    first = worker.run_periodic()
    clock.advance(timedelta(seconds=59))
    too_soon = worker.run_periodic()
    clock.advance(timedelta(seconds=1))
    again = worker.run_periodic()

    assert first is not None and first["aggregated"] == 1
    assert too_soon is None
    assert again is not None and done(again) == {}
    off = Worker(session_factory, Settings(var_dir=tmp_path / "var", periodic_jobs=False),
                 clock)
    clock.advance(timedelta(days=2))
    assert off.run_periodic() is None
    assert all_runs(session_factory) == 2  # the aggregation and the first reconciliation


def test_an_application_another_process_is_handling_is_left_alone(
        session_factory: sessionmaker[Session], clock: FixedClock, settings: Settings,
        new_target: Callable[[], MemoryTarget]) -> None:
    directory = add_application(session_factory, "Directory", target=new_target().name)
    with session_factory() as other:
        if other.get_bind().dialect.name != "postgresql":
            pytest.skip("advisory locks are PostgreSQL's; SQLite means one process")
        other.execute(text("SELECT pg_advisory_lock(:key)"),
                      {"key": periodic._lock_key(f"reconciliation:{directory}")})
        try:
            held = periodic.run_due_jobs(session_factory, settings=settings, clock=clock)
        finally:
            other.execute(text("SELECT pg_advisory_unlock_all()"))
            other.commit()

    free = periodic.run_due_jobs(session_factory, settings=settings, clock=clock)

    assert (held["aggregated"], free["aggregated"]) == (0, 1)
    assert runs(session_factory, directory) == [("aggregation", "succeeded"),
                                                ("reconciliation", "succeeded")]


def test_accounts_correlate_on_the_first_aggregation(
        session_factory: sessionmaker[Session], clock: FixedClock, settings: Settings,
        new_target: Callable[[], MemoryTarget]) -> None:
    target = new_target()
    target.add_account("ghost", {"employeeNumber": "X9"})
    directory = add_application(session_factory, "Directory", target=target.name)

    periodic.run_due_jobs(session_factory, settings=settings, clock=clock)

    with unit_of_work(session_factory) as session:
        rows = [(a.username, a.identity_id) for a in session.scalars(
            select(Account).where(Account.application_id == directory))]
    assert rows == [("ghost", None)]  # kept as an orphan for review
