"""Dynamic forms (JSON Schema Draft 2020-12) and request numbers."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from idgov.db.session import unit_of_work
from idgov.errors import FieldError, InvalidInput
from idgov.requests.forms import check_form_schema, form_errors
from idgov.requests.numbering import next_number

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "justification": {"type": "string", "minLength": 10},
        "duration": {"type": "object", "properties": {"days": {"type": "integer",
                                                                "maximum": 90}},
                     "required": ["days"]},
        "start": {"type": "string", "format": "date"},
        "data_handling_acknowledged": {"const": True},
    },
    "required": ["justification", "data_handling_acknowledged"],
    "additionalProperties": False,
}

CASES = [
    ({"justification": "A good reason", "data_handling_acknowledged": True}, []),
    ({}, [("form_data.data_handling_acknowledged", "is required"),
          ("form_data.justification", "is required")]),
    ({"justification": "A good reason", "data_handling_acknowledged": False},
     [("form_data.data_handling_acknowledged", "True was expected")]),
    ({"justification": "A good reason", "data_handling_acknowledged": True,
      "duration": {"days": 120}},
     [("form_data.duration.days", "120 is greater than the maximum of 90")]),
    ({"justification": "A good reason", "data_handling_acknowledged": True,
      "duration": {}}, [("form_data.duration.days", "is required")]),
    ({"justification": "A good reason", "data_handling_acknowledged": True,
      "start": "tomorrow"}, [("form_data.start", "'tomorrow' is not a 'date'")]),
    ({"justification": "A good reason", "data_handling_acknowledged": True, "x": 1},
     [("form_data.x", "is not a field of this form")]),
]


@pytest.mark.parametrize(("data", "expected"), CASES)
def test_form_errors_name_their_field(data: dict[str, Any],
                                      expected: list[tuple[str, str]]) -> None:
    assert form_errors(SCHEMA, data) == [FieldError(f, m) for f, m in expected]


@pytest.mark.parametrize("schema", [
    {"type": "object", "properties": {"a": {"type": "no-such-type"}}},
    {"type": "object", "required": "justification"},
    {"type": "string"},
    {"properties": {}},
])
def test_invalid_form_schemas_are_refused(schema: dict[str, Any]) -> None:
    with pytest.raises(InvalidInput) as caught:
        check_form_schema(schema)
    assert [e.field for e in caught.value.errors] == ["form_schema"]


def test_numbers_count_per_series_and_year_with_no_gap_and_no_repeat(
        session_factory: sessionmaker[Session]) -> None:
    with unit_of_work(session_factory) as session:
        assert [next_number(session, "REQ", 2026) for _ in range(3)] == [
            "REQ-2026-000001", "REQ-2026-000002", "REQ-2026-000003"]
        assert next_number(session, "RITM", 2026) == "RITM-2026-000001"
        assert next_number(session, "REQ", 2027) == "REQ-2027-000001"
    session = session_factory()
    try:
        assert next_number(session, "REQ", 2026) == "REQ-2026-000004"
        session.rollback()  # never committed: nobody saw REQ-2026-000004
    finally:
        session.close()
    with unit_of_work(session_factory) as session:
        assert next_number(session, "REQ", 2026) == "REQ-2026-000004"
        assert next_number(session, "REQ", 2026) == "REQ-2026-000005"


@pytest.mark.postgres_only
def test_two_transactions_never_get_the_same_number(
        session_factory: sessionmaker[Session]) -> None:
    """The second transaction waits for the first one's row lock, then counts on."""
    first = session_factory()
    got: list[str] = []
    try:
        assert next_number(first, "REQ", 2026) == "REQ-2026-000001"

        def other() -> None:
            with unit_of_work(session_factory) as session:
                got.append(next_number(session, "REQ", 2026))

        thread = threading.Thread(target=other)
        thread.start()
        thread.join(timeout=0.5)
        assert thread.is_alive(), "the second transaction must wait for the first"
        first.commit()
        thread.join(timeout=30)
    finally:
        first.close()
    assert got == ["REQ-2026-000002"]
