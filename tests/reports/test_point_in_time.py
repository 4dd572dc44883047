"""The point-in-time entitlement report gives exactly who held what at several instants of a
month with grants, an expiry, a revocation, a role composition change and a leaver."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import pytest
from pydantic import ValidationError
from sqlalchemy.orm import Session, sessionmaker

from idgov.clock import FixedClock
from idgov.db.session import unit_of_work
from idgov.errors import InvalidInput
from idgov.reports import point_in_time
from idgov.reports.registry import ReportQuery
from tests.reports.history_world import T0, at, build_history

PAY = "vendor-payments-approve"
APM = "role: AP Manager"
VIA_APPROVER = "role: AP Manager > Payments Approver"
SHOWN = ("employee_id", "entitlement", "how_held", "held_since", "expires_at", "ended_at")


def report(factory: sessionmaker[Session], clock: FixedClock, as_of: datetime | str,
           columns: Sequence[str] = SHOWN, **filters: Any) -> list[tuple[Any, ...]]:
    params = point_in_time.PointInTimeParams.model_validate({"as_of": as_of, **filters})
    with unit_of_work(factory) as session:
        query: ReportQuery = point_in_time.REPORT.build(session, params, clock)
        assert query.select is not None and query.columns == point_in_time.COLUMNS
        rows = session.execute(query.select).all()
    pick = [point_in_time.COLUMNS.index(c) for c in columns]
    return [tuple(row[i] for i in pick) for row in rows]


@pytest.fixture
def history(session_factory: sessionmaker[Session], clock: FixedClock) -> None:
    build_history(session_factory, clock)


@pytest.mark.usefixtures("history")
def test_who_could_approve_vendor_payments_on_1_march_at_nine(
        session_factory: sessionmaker[Session], clock: FixedClock) -> None:
    # Bob's cover ended at 08:00, Carol's grant was revoked, Dan had left: only Alice,
    # through her role, until the inclusion ended on 5 March.
    assert report(session_factory, clock, "2026-03-01T09:00:00+00:00", entitlement=PAY) == [
        ("E1", PAY, VIA_APPROVER, T0, None, at(5, 10, month=3)),
    ]
    # The same instant written in another zone is the same instant.
    assert report(session_factory, clock, "2026-03-01T10:00:00+01:00", entitlement=PAY,
                  columns=("employee_id",)) == [("E1",)]


@pytest.mark.usefixtures("history")
def test_the_month_at_several_instants(session_factory: sessionmaker[Session],
                                       clock: FixedClock) -> None:
    # 16 February: the role also grants vendor-master-edit (since the 15th, until the 20th).
    assert report(session_factory, clock, at(16, 12)) == [
        ("E1", "ledger-read", APM, T0, None, None),
        ("E1", "vendor-master-edit", VIA_APPROVER, at(15, 12), None, at(20, 12)),
        ("E1", PAY, VIA_APPROVER, T0, None, at(5, 10, month=3)),
        ("E2", PAY, "direct", T0, at(1, 8, month=3), at(1, 8, month=3)),
        ("E3", PAY, "direct", at(10, 10), None, at(25, 9)),
        ("E4", "ledger-read", APM, T0, None, at(27, 17)),
        ("E4", "vendor-master-edit", VIA_APPROVER, at(15, 12), None, at(20, 12)),
        ("E4", PAY, VIA_APPROVER, T0, None, at(27, 17)),
    ]
    # 20 February 12:00, the instant the link ended: vendor-master-edit is gone.
    assert report(session_factory, clock, at(20, 12), columns=("employee_id", "entitlement")
                  ) == [("E1", "ledger-read"), ("E1", PAY), ("E2", PAY), ("E3", PAY),
                        ("E4", "ledger-read"), ("E4", PAY)]
    # 28 February: Carol revoked, Dan gone.
    assert report(session_factory, clock, at(28, 12), columns=("employee_id", "entitlement")
                  ) == [("E1", "ledger-read"), ("E1", PAY), ("E2", PAY)]
    # 1 March 07:59: Bob's cover still runs; 08:00 it has ended.
    assert report(session_factory, clock, at(1, 7, 59, month=3), entitlement=PAY,
                  columns=("employee_id",)) == [("E1",), ("E2",)]
    assert report(session_factory, clock, at(1, 8, month=3), entitlement=PAY,
                  columns=("employee_id",)) == [("E1",)]
    # 6 March, and now: the inclusion has ended; Alice keeps only what AP Manager grants.
    assert report(session_factory, clock, at(6, 0, month=3)) == [
        ("E1", "ledger-read", APM, T0, None, None)]
    assert report(session_factory, clock, clock.now()) == [
        ("E1", "ledger-read", APM, T0, None, None)]


@pytest.mark.usefixtures("history")
def test_before_the_first_grant_nobody_held_anything(session_factory: sessionmaker[Session],
                                                     clock: FixedClock) -> None:
    assert report(session_factory, clock, T0) == [
        ("E1", "ledger-read", APM, T0, None, None),
        ("E1", PAY, VIA_APPROVER, T0, None, at(5, 10, month=3)),
        ("E2", PAY, "direct", T0, at(1, 8, month=3), at(1, 8, month=3)),
        ("E4", "ledger-read", APM, T0, None, at(27, 17)),
        ("E4", PAY, VIA_APPROVER, T0, None, at(27, 17)),
    ]


@pytest.mark.usefixtures("history")
def test_the_report_carries_who_and_why(session_factory: sessionmaker[Session],
                                        clock: FixedClock) -> None:
    rows = report(session_factory, clock, at(28, 12), identity="E2",
                  columns=("identity_name", "identity_state", "department",
                           "manager_employee_id", "manager_name", "application", "source",
                           "reason", "granted_by", "granted_at", "risk", "privileged"))
    assert rows == [("Bob Clerk", "active", "Finance", "M1", "Maria Boss", "Finance ERP",
                     "admin", "cover for February", "system:report-tests", T0, "high", True)]


@pytest.mark.usefixtures("history")
@pytest.mark.parametrize(("as_of", "message"), [
    (datetime(2026, 2, 1, 7, 59, tzinfo=T0.tzinfo), "before the service existed"),
    (datetime(2026, 3, 10, 9, 1, tzinfo=T0.tzinfo), "in the future"),
])
def test_an_instant_outside_the_history_is_refused(session_factory: sessionmaker[Session],
                                                   clock: FixedClock, as_of: datetime,
                                                   message: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        report(session_factory, clock, as_of)
    assert message in caught.value.detail
    assert [e.field for e in caught.value.errors] == ["as_of"]


@pytest.mark.parametrize("as_of", ["2026-03-01T09:00:00", "1 March 9am", "2026-13-01T09:00Z"])
def test_a_naive_or_malformed_instant_is_refused(as_of: str) -> None:
    with pytest.raises(ValidationError) as caught:
        point_in_time.PointInTimeParams.model_validate({"as_of": as_of})
    assert [e["loc"] for e in caught.value.errors()] == [("as_of",)]


def test_unknown_filters_are_refused() -> None:
    with pytest.raises(ValidationError) as caught:
        point_in_time.PointInTimeParams.model_validate(
            {"as_of": "2026-03-01T09:00:00Z", "colour": "red"})
    assert [e["type"] for e in caught.value.errors()] == ["extra_forbidden"]
