"""The joiner-mover-leaver diff, on plain data: kinds, row checks, safety thresholds."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

import pytest

from idgov.lifecycle.planner import Current, Rules, plan
from idgov.lifecycle.records import RowError, WorkerRecord

SOURCE = uuid.uuid4()


def rec(row: int, employee_id: str, **values: Any) -> WorkerRecord:
    base = {"employee_id": employee_id, "given_name": "Given" + employee_id,
            "family_name": "Family", "department": "Sales", "manager_employee_id": None,
            "employment_type": "employee", "termination_date": None}
    return WorkerRecord(row=row, values={**base, **values})


def cur(employee_id: str, state: str = "active", source: uuid.UUID | None = SOURCE,
        **values: Any) -> tuple[str, Current]:
    base = {"employee_id": employee_id, "given_name": "Given" + employee_id,
            "family_name": "Family", "display_name": f"Given{employee_id} Family",
            "department": "Sales", "manager_employee_id": None,
            "employment_type": "employee", "termination_date": None, "attributes": {}}
    return employee_id, Current(identity_id=uuid.uuid4(), values={**base, **values},
                                lifecycle_state=state, source_id=source)


def rules(mode: str = "snapshot", **kw: Any) -> Rules:
    return Rules(mode=mode, source_id=SOURCE, **kw)


# (description, current, record overrides or None (missing), expected kind or "unchanged")
KINDS = [
    ("new employee id", None, {}, "joiner"),
    ("same values", {}, {}, "unchanged"),
    ("new department", {}, {"department": "Finance"}, "mover"),
    ("new manager", {"manager_employee_id": None}, {"manager_employee_id": "M"}, "mover"),
    ("new surname", {}, {"family_name": "Other"}, "update"),
    ("contractor becomes employee", {"employment_type": "contractor"}, {}, "conversion"),
    ("termination date appears", {}, {"termination_date": date(2026, 3, 31)}, "leaver"),
    ("for-cause termination", {}, {"termination_immediate": True}, "leaver"),
    ("termination withdrawn", {"termination_date": date(2026, 3, 31)}, {}, "update"),
    ("terminated comes back", {"termination_date": date(2025, 12, 31), "_state": "terminated"},
     {"hire_date": date(2026, 2, 1)}, "rehire"),
    ("terminated, same record", {"termination_date": date(2025, 12, 31),
                                 "_state": "terminated"},
     {"termination_date": date(2025, 12, 31)}, "unchanged"),
]


@pytest.mark.parametrize(("what", "current", "given", "expected"), KINDS,
                         ids=[k[0] for k in KINDS])
def test_kinds(what: str, current: dict[str, Any] | None, given: dict[str, Any],
               expected: str) -> None:
    state = (current or {}).pop("_state", "active")
    population = dict([cur("M"), cur("X")])  # the manager, and someone else
    if current is not None:
        population.update([cur("E1", state, **current)])
    records = [rec(2, "E1", **given), rec(3, "M"), rec(4, "X")]
    result = plan(records, current=population, rules=rules())
    kinds = {c.employee_id: c.kind for c in result.changes}
    assert result.errors == []
    assert kinds.get("E1", "unchanged") == expected


def test_missing_from_snapshot_is_a_leaver_but_not_in_a_delta() -> None:
    population = dict(cur(f"E{i}") for i in range(100))
    records = [rec(i + 2, f"E{i}") for i in range(99)]
    snapshot = plan(records, current=population, rules=rules())
    assert [(c.employee_id, c.kind, c.immediate) for c in snapshot.changes] == [
        ("E99", "leaver", True)]
    delta = plan(records, current=population, rules=rules(mode="delta"))
    assert delta.changes == []


def test_missing_identities_of_other_sources_are_not_leavers() -> None:
    population = dict([cur("E1"), cur("HAND", source=None), cur("OTHER", source=uuid.uuid4())])
    result = plan([rec(2, "E1")], current=population, rules=rules())
    assert result.changes == []


def test_a_rejected_row_never_makes_its_person_a_leaver() -> None:
    population = dict([cur("E1"), cur("E2")])
    prior = [RowError(3, "Hire Date", "not a date", "E2")]
    result = plan([rec(2, "E1")], current=population, rules=rules(), prior_errors=prior)
    assert result.changes == []
    assert result.counts["rejected"] == 1


def test_duplicate_employee_ids_reject_every_row_naming_them() -> None:
    records = [rec(2, "A"), rec(3, "B"), rec(4, "A")]
    result = plan(records, current={}, rules=rules(), columns={"employee_id": "Emp No"})
    assert [(e.row, e.column) for e in result.errors] == [(2, "Emp No"), (4, "Emp No")]
    assert "rows 2, 4" in result.errors[0].message
    assert [c.employee_id for c in result.changes] == ["B"]


def test_unknown_manager_and_managers_in_any_order() -> None:
    # Reports come before their managers; one names a manager nobody has.
    records = [rec(2, "R1", manager_employee_id="M1"), rec(3, "R2", manager_employee_id="ZZ"),
               rec(4, "M1", manager_employee_id="CEO"), rec(5, "CEO")]
    result = plan(records, current={}, rules=rules(),
                  columns={"manager_employee_id": "Manager"})
    assert [(e.row, e.column, e.message) for e in result.errors] == [
        (3, "Manager", "unknown manager ZZ")]
    assert sorted(c.employee_id for c in result.changes) == ["CEO", "M1", "R1"]


def test_a_report_of_a_rejected_joiner_is_rejected_too() -> None:
    records = [rec(2, "R", manager_employee_id="M"), rec(3, "M", hire_date="x", given_name="")]
    result = plan(records, current={}, rules=rules())
    assert {e.row for e in result.errors} == {2, 3}


def test_manager_cycles_are_reported_on_every_row_of_the_cycle() -> None:
    records = [rec(2, "A", manager_employee_id="B"), rec(3, "B", manager_employee_id="C"),
               rec(4, "C", manager_employee_id="A"), rec(5, "D", manager_employee_id="A")]
    result = plan(records, current={}, rules=rules())
    cycle = [e for e in result.errors if "cycle" in e.message]
    assert sorted(e.row for e in cycle) == [2, 3, 4]
    assert "A -> B -> C -> A" in cycle[0].message
    # D's manager was rejected with the cycle: D cannot apply either.
    assert 5 in {e.row for e in result.errors}
    assert result.changes == []


def test_a_cycle_through_an_existing_identity() -> None:
    population = dict([cur("A", manager_employee_id="B"), cur("B")])
    result = plan([rec(2, "B", manager_employee_id="A")], current=population,
                  rules=rules(mode="delta"))
    assert [e.row for e in result.errors] == [2]


def test_duplicate_email_in_file_and_email_of_someone_else() -> None:
    population = dict([cur("OLD", email="taken@example.com"),
                       cur("OLD2", email="freed@example.com")])
    records = [rec(2, "A", email="same@example.com"), rec(3, "B", email="Same@example.com"),
               rec(4, "C", email="taken@example.com"),
               # OLD2 gives up an address in the same file that D takes: allowed.
               rec(5, "OLD2", email="new@example.com"), rec(6, "D", email="freed@example.com")]
    result = plan(records, current=population, rules=rules(mode="delta"))
    assert sorted((e.row, e.column) for e in result.errors) == [
        (2, "email"), (3, "email"), (4, "email")]
    assert "belongs to employee OLD" in next(e for e in result.errors if e.row == 4).message
    assert sorted(c.employee_id for c in result.changes) == ["D", "OLD2"]


def test_truncated_snapshot_is_held_over_the_termination_share() -> None:
    population = dict(cur(f"E{i}") for i in range(100))
    records = [rec(i + 2, f"E{i}") for i in range(94)]  # 6 missing: 6% > 5%
    result = plan(records, current=population, rules=rules())
    assert result.hold_reason is not None and "6 of 100" in result.hold_reason
    within = plan([*records, rec(200, "E94")], current=population, rules=rules())
    assert within.hold_reason is None  # 5 missing: 5% is allowed


def test_change_threshold_holds_and_first_load_is_never_held() -> None:
    population = dict(cur(f"E{i}") for i in range(10))
    records = [rec(i + 2, f"E{i}", department="Finance") for i in range(10)]
    held = plan(records, current=population, rules=rules(change_threshold=5))
    assert held.hold_reason is not None and "10 identities would change" in held.hold_reason
    first = plan(records, current={}, rules=rules(change_threshold=5))
    assert first.hold_reason is None and len(first.changes) == 10


def test_all_or_nothing_rejects_the_run_on_any_bad_row() -> None:
    records = [rec(2, "A"), rec(3, "A"), rec(4, "B")]
    result = plan(records, current={}, rules=rules(all_or_nothing=True))
    assert result.reject_all is True
    assert plan(records, current={}, rules=rules()).reject_all is False


def test_a_partial_record_cannot_create_an_identity() -> None:
    record = WorkerRecord(row=1, values={"employee_id": "NEW", "department": "X"},
                          partial=True)
    result = plan([record], current={}, rules=rules(mode="delta"))
    assert result.changes == []
    assert "needs given_name, family_name" in result.errors[0].message
    assert result.errors[0].column == "given_name"


def test_counts() -> None:
    population = dict([cur("A"), cur("B"), cur("C")])
    records = [rec(2, "A"), rec(3, "B", department="Ops"), rec(4, "N"), rec(5, "N")]
    result = plan(records, current=population, rules=rules(termination_threshold_percent=50),
                  rows=4)
    assert result.counts == {"joiners": 0, "movers": 1, "leavers": 1, "rehires": 0,
                             "conversions": 0, "updates": 0, "unchanged": 1, "rejected": 2,
                             "rows": 4}


def test_a_new_hr_key_naming_the_previous_one_reuses_the_identity() -> None:
    population = dict([cur("C-17", employment_type="contractor"),
                       cur("OLD-9", "terminated", termination_date=date(2025, 6, 30))])
    records = [rec(2, "E-500", previous_employee_id="C-17", given_name="GivenC-17"),
               rec(3, "E-501", previous_employee_id="OLD-9", given_name="GivenOLD-9",
                   hire_date=date(2026, 2, 1))]
    result = plan(records, current=population, rules=rules())
    assert result.errors == []
    kinds = {(c.employee_id, c.kind, c.identity_id) for c in result.changes}
    assert kinds == {("E-500", "conversion", population["C-17"].identity_id),
                     ("E-501", "rehire", population["OLD-9"].identity_id)}
    assert all("employee_id" in c.changed for c in result.changes)
