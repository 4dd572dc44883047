"""The JSON push: records and events become worker records, checked as CSV cells are, with
bad entries reported by position and JSON path. Pure: no database."""

from __future__ import annotations

from datetime import date, time
from typing import Any

import pytest
from pydantic import ValidationError

from idgov.lifecycle.csvfeed import FeedFormatError
from idgov.lifecycle.jsonfeed import PushBody, parse_push
from idgov.lifecycle.records import ParsedFeed

MAPPING = {"employee_id": "employeeNumber", "given_name": "firstName",
           "family_name": "lastName", "attributes.division": "division"}


def _push(body: dict[str, Any], mapping: dict[str, str] | None = None,
          default_mode: str = "delta") -> tuple[ParsedFeed, str]:
    return parse_push(PushBody.model_validate(body),
                      mapping=MAPPING if mapping is None else mapping, default_mode=default_mode)


def _where(feed: ParsedFeed) -> list[tuple[int, str | None, str | None]]:
    return [(e.row, e.column, e.employee_id) for e in feed.errors]


def test_records_take_mapped_or_canonical_keys() -> None:
    feed, mode = _push({"mode": "snapshot", "records": [
        {"employeeNumber": "E1", "firstName": "Zoë", "lastName": "O'Brien",
         "department": "R&D", "hire_date": "2026-02-01", "groups": ["Lab", " Lab ", "All"],
         "division": "North", "attributes": {"organization": "Acme", "level": 3},
         "favouriteColour": "green"},
        {"employee_id": 1002, "given_name": "José María", "family_name": "Ångström",
         "employment_type": "Contractor", "groups": "Sales; EMEA", "email": None},
    ]})
    assert mode == "snapshot" and feed.errors == [] and feed.rows == 2
    first, second = feed.records
    assert (first.row, first.partial) == (1, False)
    assert first.values == {
        "employee_id": "E1", "given_name": "Zoë", "family_name": "O'Brien",
        "department": "R&D", "hire_date": date(2026, 2, 1), "groups": ["Lab", "All"],
        "attributes": {"division": "North", "organization": "Acme", "level": "3"}}
    assert second.values == {"employee_id": "1002", "given_name": "José María",
                             "family_name": "Ångström", "employment_type": "contractor",
                             "groups": ["Sales", "EMEA"], "email": None}


def test_mode_defaults_to_the_sources() -> None:
    body = {"records": [{"employee_id": "E1", "given_name": "A", "family_name": "B"}]}
    assert _push(body, default_mode="snapshot")[1] == "snapshot"
    assert _push(body)[1] == "delta"


def test_full_records_need_names_partial_ones_only_the_key() -> None:
    feed, _ = _push({"records": [
        {"employee_id": "E1", "department": "Sales"},
        {"employee_id": "E2", "department": "Sales", "partial": True},
        {"department": "Sales", "partial": True},
        {"employee_id": "E4", "given_name": "A", "family_name": "B", "partial": "yes"},
    ]})
    assert [(r.employee_id, r.partial, r.values) for r in feed.records] == [
        ("E2", True, {"employee_id": "E2", "department": "Sales"})]
    assert _where(feed) == [
        (1, "records[0].given_name", "E1"), (1, "records[0].family_name", "E1"),
        (3, "records[2].employee_id", None), (4, "records[3].partial", "E4")]


def test_record_values_are_checked_like_csv_cells() -> None:
    feed, _ = _push({"records": [
        {"employeeNumber": "E1", "firstName": "A", "lastName": "B", "hire_date": "01/02/2026",
         "time_zone": "Mars/Olympus", "termination_immediate": "perhaps", "email": "nope",
         "employment_type": "wizard", "termination_time": "5pm", "department": ["x"]},
        {"employeeNumber": "E2", "employee_id": "E2", "firstName": "A", "lastName": "B",
         "attributes": {"bad name!": "x"}},
        {"employee_id": "E3", "given_name": "Ada", "family_name": "Lovelace",
         "termination_immediate": True, "termination_date": "2026-03-31",
         "termination_time": "17:30"},
    ]})
    assert [r.employee_id for r in feed.records] == ["E3"]
    assert feed.records[0].values["termination_time"] == time(17, 30)
    assert feed.records[0].values["termination_immediate"] is True
    assert {(e.row, e.column) for e in feed.errors} == {
        (1, "records[0].hire_date"), (1, "records[0].time_zone"),
        (1, "records[0].termination_immediate"), (1, "records[0].email"),
        (1, "records[0].employment_type"), (1, "records[0].termination_time"),
        (1, "records[0].department"),
        (2, "records[1].employee_id"), (2, "records[1].attributes.bad name!")}
    assert all(e.employee_id == "E1" for e in feed.errors if e.row == 1)


def test_duplicate_employee_ids_in_a_batch_reject_every_entry() -> None:
    feed, _ = _push({"records": [
        {"employee_id": "E1", "given_name": "A", "family_name": "B"},
        {"employee_id": "E2", "given_name": "C", "family_name": "D"},
        {"employee_id": "E1", "given_name": "E", "family_name": "F"}]})
    assert [r.employee_id for r in feed.records] == ["E2"]
    assert _where(feed) == [(1, "records[0].employee_id", "E1"),
                            (3, "records[2].employee_id", "E1")]
    assert "entry 3" in feed.errors[0].message


def test_events_become_partial_records_and_always_a_delta() -> None:
    feed, mode = _push({"events": [
        {"type": "hire", "employee_id": "E1", "effective_date": "2026-03-01",
         "worker": {"firstName": "Zoë", "lastName": "O'Brien", "department": "Lab"}},
        {"type": "terminate", "employee_id": "E2", "effective_date": "2026-03-31",
         "effective_time": "17:30"},
        {"type": "terminate", "employee_id": "E3", "effective_date": "2026-01-15",
         "immediate": True},
        {"type": "rehire", "employee_id": 4, "effective_date": "2026-04-01"},
        {"type": "convert", "employee_id": "E5", "effective_date": "2026-02-01",
         "worker": {"employment_type": "Employee", "job_code": "ENG2"}},
        {"type": "update", "employee_id": "E6", "effective_date": "2026-02-01",
         "worker": {"location": "Lyon", "division": "South"}},
    ]})
    assert mode == "delta" and feed.errors == [] and feed.rows == 6
    assert all(r.partial for r in feed.records)
    values = {r.employee_id: r.values for r in feed.records}
    assert values["E1"] == {"employee_id": "E1", "given_name": "Zoë", "family_name": "O'Brien",
                            "department": "Lab", "hire_date": date(2026, 3, 1),
                            "termination_date": None, "termination_time": None,
                            "termination_immediate": None}
    assert values["E2"] == {"employee_id": "E2", "termination_date": date(2026, 3, 31),
                            "termination_time": time(17, 30), "termination_immediate": False}
    assert values["E3"]["termination_immediate"] is True
    assert values["E3"]["termination_time"] is None
    assert values["4"]["hire_date"] == date(2026, 4, 1)
    assert values["4"]["termination_date"] is None
    assert values["E5"] == {"employee_id": "E5", "employment_type": "employee",
                            "job_code": "ENG2"}
    assert values["E6"] == {"employee_id": "E6", "location": "Lyon",
                            "attributes": {"division": "South"}}


def test_bad_events_are_reported_by_position_and_path() -> None:
    feed, _ = _push({"events": [
        {"type": "hire", "employee_id": "E1", "effective_date": "2026-03-01",
         "worker": {"firstName": "Zoë"}},
        {"type": "terminate", "employee_id": "E2", "effective_date": "31/03/2026",
         "effective_time": "5pm"},
        {"type": "convert", "employee_id": "E3", "effective_date": "2026-02-01"},
        {"type": "update", "employee_id": "E4", "effective_date": "soon",
         "effective_time": "10:00", "worker": {"employeeNumber": "E44"}},
        {"type": "rehire", "employee_id": "E5", "effective_date": "2026-02-01"},
    ]})
    assert [r.employee_id for r in feed.records] == ["E5"]
    assert _where(feed) == [
        (1, "events[0].family_name", "E1"),
        (2, "events[1].effective_date", "E2"), (2, "events[1].effective_time", "E2"),
        (3, "events[2].worker.employment_type", "E3"),
        (4, "events[3].worker.employeeNumber", "E4"), (4, "events[3].effective_date", "E4"),
        (4, "events[3].effective_time", "E4")]


def test_a_push_is_records_or_events_never_both() -> None:
    record = {"employee_id": "E1", "given_name": "A", "family_name": "B"}
    event = {"type": "update", "employee_id": "E1", "effective_date": "2026-01-01"}
    for body in ({}, {"records": [record], "events": [event]},
                 {"mode": "snapshot", "events": [event]},
                 {"mode": "full", "records": [record]},
                 {"events": [{**event, "type": "promote"}]},
                 {"events": [{**event, "colour": "red"}]},
                 {"records": [record], "extra": 1}):
        with pytest.raises(ValidationError):
            PushBody.model_validate(body)


def test_an_invalid_mapping_refuses_the_push() -> None:
    with pytest.raises(FeedFormatError):
        _push({"records": []}, mapping={"surname": "lastName"})
