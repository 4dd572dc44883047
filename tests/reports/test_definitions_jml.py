"""The JML report, on changes made by a real HR feed and provisioned by the real engine on a
memory target: who joined, moved and left in a period and how long each took."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from idgov.db.session import unit_of_work
from idgov.lifecycle import events
from idgov.lifecycle import service as hr
from idgov.lifecycle.jsonfeed import PushBody
from idgov.models.hr import BirthrightRule, HrSource
from idgov.reports import jml
from idgov.types import Actor
from tests.provisioning.engine_env import Env, env_fixture  # noqa: F401  (the env fixture)

HR = Actor.system("hr-tests")
SHOWN = ("category", "kind", "employee_id", "department", "effective_at", "operations",
         "succeeded", "open", "last_operation_done_at", "status", "duration_seconds")


def person(employee_id: str, department: str, **extra: Any) -> dict[str, Any]:
    """A worker reporting to Alice (who gets their day-one links)."""
    return {"employee_id": employee_id, "given_name": "Jo", "family_name": employee_id,
            "email": f"{employee_id.lower()}@example.com", "department": department,
            "manager_employee_id": "ALICE", **extra}


def push(env: Env, source_id: uuid.UUID, *records: dict[str, Any]) -> None:
    with unit_of_work(env.factory) as session:
        run = hr.push(session, source_id=source_id,
                      body=PushBody(mode="delta", records=list(records)), actor=HR,
                      clock=env.clock)
        assert run.state == "applied", run.errors


def report(env: Env, **params: Any) -> list[tuple[Any, ...]]:
    with unit_of_work(env.factory) as session:
        query = jml.REPORT.build(session, jml.JmlParams.model_validate(params), env.clock)
        assert query.select is not None and query.columns == jml.COLUMNS
        rows = session.execute(query.select).all()
    pick = [jml.COLUMNS.index(c) for c in SHOWN]
    return [tuple(r[i] for i in pick) for r in rows]


@pytest.fixture
def source(env: Env) -> uuid.UUID:
    """A JSON source; Sales get the VPN, Finance ERP-Read, by birthright."""
    with unit_of_work(env.factory) as session:
        src = HrSource(name="workday", kind="json", default_mode="delta", mover_grace_days=7)
        session.add(src)
        for name, dept, ent in (("Sales VPN", "Sales", "VPN"),
                                ("Finance ERP", "Finance", "ERP-Read")):
            session.add(BirthrightRule(
                name=name, entitlement_id=uuid.UUID(env.ent[ent]),
                condition={"attribute": "department", "op": "eq", "value": dept}))
        session.flush()
        return src.id


def test_joiners_movers_and_leavers_with_their_provisioning_times(
        env: Env, source: uuid.UUID) -> None:
    clock = env.clock
    start = datetime(2026, 2, 2, 9, 0, tzinfo=UTC)
    hire = datetime(2026, 2, 9, 0, 0, tzinfo=UTC)
    clock.set(start)
    # J1 starts today; J2 is hired for 9 February (a prehire until then).
    push(env, source, person("J1", "Sales", hire_date="2026-02-01"),
         person("J2", "Finance", hire_date="2026-02-09"))
    clock.set(start + timedelta(minutes=10))
    env.run()
    clock.set(hire + timedelta(hours=2))
    with unit_of_work(env.factory) as session:
        events.process_due(session, actor=HR, clock=clock)
    env.run()
    # J1 moves to Finance on 10 February: ERP-Read granted and the account's department
    # updated at once (done 5 minutes later); the VPN ends after the grace period, by
    # expiry, which is not the move's provisioning.
    moved = datetime(2026, 2, 10, 9, 0, tzinfo=UTC)
    clock.set(moved)
    push(env, source, person("J1", "Finance", hire_date="2026-02-01"))
    clock.set(moved + timedelta(minutes=5))
    env.run()
    # J1 leaves with immediate effect on 20 February; disabled and revoked 30 minutes later.
    left = datetime(2026, 2, 20, 9, 0, tzinfo=UTC)
    clock.set(left)
    push(env, source, person("J1", "Finance", hire_date="2026-02-01",
                             termination_date="2026-02-20", termination_immediate=True))
    # J2 will leave at the end of 27 February: still scheduled when the report is run.
    push(env, source, person("J2", "Finance", hire_date="2026-02-09",
                             termination_date="2026-02-27"))
    clock.set(left + timedelta(minutes=30))
    env.run()
    clock.set(datetime(2026, 2, 21, 9, 0, tzinfo=UTC))

    assert report(env, **{"from": "2026-02-01T00:00:00Z", "to": "2026-03-01T00:00:00Z"}) == [
        ("joiner", "joiner", "J1", "Finance", start, 3, 3, 0, start + timedelta(minutes=10),
         "completed", 600.0),
        ("joiner", "joiner", "J2", "Finance", hire, 3, 3, 0, hire + timedelta(hours=2),
         "completed", 7200.0),
        ("mover", "mover", "J1", "Finance", moved, 2, 2, 0, moved + timedelta(minutes=5),
         "completed", 300.0),
        ("leaver", "leaver", "J1", "Finance", left, 2, 2, 0, left + timedelta(minutes=30),
         "completed", 1800.0),
        ("leaver", "leaver", "J2", "Finance", datetime(2026, 2, 28, 0, 0, tzinfo=UTC), 0, 0, 0,
         None, "scheduled", None),
    ]
    assert [r[:3] for r in report(env, category="leaver", **{
        "from": "2026-02-20T00:00:00+00:00", "to": "2026-02-21T00:00:00+00:00"})] == [
        ("leaver", "leaver", "J1")]
    assert report(env, department="Sales", **{"from": "2026-02-01T00:00:00Z",
                                              "to": "2026-03-01T00:00:00Z"}) == []


@pytest.mark.parametrize("params", [
    {"from": "2026-02-01T00:00:00Z"},
    {"from": "2026-02-01", "to": "2026-03-01T00:00:00Z"},
    {"from": "2026-03-01T00:00:00Z", "to": "2026-02-01T00:00:00Z"},
    {"from": "2026-02-01T00:00:00Z", "to": "2026-03-01T00:00:00Z", "category": "rehire"},
])
def test_a_bad_period_is_refused(params: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        jml.JmlParams.model_validate(params)
