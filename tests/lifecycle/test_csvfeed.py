"""Reading HR CSV files: encodings, line endings, quoting, mappings, and bad rows reported
row by row with the column as the file names it. Pure: no database."""

from __future__ import annotations

import hashlib
import io
from datetime import date, time
from pathlib import Path

import pytest

from idgov.errors import InvalidInput
from idgov.lifecycle.csvfeed import FeedFormatError, parse_csv, parse_csv_file, parse_csv_stream
from idgov.lifecycle.records import RowError

HR_MAPPING = {
    "employee_id": "Employee Number", "given_name": "First Name", "family_name": "Last Name",
    "email": "Work Email", "manager_employee_id": "Manager Number", "department": "Dept",
    "location": "Office", "time_zone": "Time Zone", "employment_type": "Worker Type",
    "hire_date": "Start Date", "termination_date": "End Date", "termination_time": "End Time",
    "termination_immediate": "For Cause", "groups": "Teams", "attributes.division": "Division",
}
HR_HEADER = ("Employee Number,First Name,Last Name,Work Email,Manager Number,Dept,Office,"
             "Time Zone,Worker Type,Start Date,End Date,End Time,For Cause,Teams,Division,"
             "Badge Colour")


def _hr_file(*rows: str, newline: str = "\r\n", bom: bool = True) -> bytes:
    text = newline.join([HR_HEADER, *rows]) + newline
    return (b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8")


def _by_id(data: bytes, mapping: dict[str, str] | None = None) -> dict[str, dict[str, object]]:
    feed = parse_csv(data, mapping=HR_MAPPING if mapping is None else mapping)
    assert feed.errors == []
    return {r.employee_id: r.values for r in feed.records}


def test_hr_headers_bom_crlf_quoting_and_accented_names_survive() -> None:
    data = _hr_file(
        'E1,Zoë,O\'Brien,zoe.obrien@example.com,,"Research, Development",Paris,Europe/Paris,'
        'Employee,2026-02-01,,,,"Lab; All staff ;;Lab",North,green',
        '"E2","José María","Ångström","jm@example.com",E1,"Sales\r\nEMEA",Madrid,,'
        'CONTRACTOR,2026-03-01,2026-06-30,17:30,no,,,',
        "E3,Siobhán,D'Arcy-Ó Súilleabháin,,E1,Finance,,,intern,2026-01-05,,,,,,")
    feed = parse_csv(data, mapping=HR_MAPPING)
    assert feed.errors == []
    assert feed.rows == 3
    assert [r.row for r in feed.records] == [2, 3, 4]  # the quoted line break starts no row
    zoe, jose, siobhan = (r.values for r in feed.records)
    assert (zoe["given_name"], zoe["family_name"]) == ("Zoë", "O'Brien")
    assert zoe["department"] == "Research, Development"
    assert zoe["groups"] == ["Lab", "All staff"]
    assert zoe["attributes"] == {"division": "North"}
    assert zoe["employment_type"] == "employee"
    assert zoe["hire_date"] == date(2026, 2, 1)
    assert zoe["termination_date"] is None and zoe["manager_employee_id"] is None
    assert (jose["given_name"], jose["family_name"]) == ("José María", "Ångström")
    assert jose["department"] == "Sales\r\nEMEA"
    assert jose["employment_type"] == "contractor"
    assert jose["termination_date"] == date(2026, 6, 30)
    assert jose["termination_time"] == time(17, 30)
    assert jose["termination_immediate"] is False
    assert jose["groups"] == [] and jose["attributes"] == {}
    assert siobhan["family_name"] == "D'Arcy-Ó Súilleabháin"
    assert siobhan["email"] is None
    assert "Badge Colour" not in str(feed.records)  # unknown columns are ignored
    assert set(zoe) == set(HR_MAPPING) - {"attributes.division"} | {"attributes"}


def test_lf_without_bom_and_canonical_headers_need_no_mapping() -> None:
    data = (b"employee_id,given_name,family_name,location,attributes.organization,notes\n"
            b"1001,Ada,Lovelace,London,Analytical,ignored\n"
            b"1002,Grace,Hopper,,,\n")
    values = _by_id(data, mapping={})
    assert values["1001"] == {"employee_id": "1001", "given_name": "Ada",
                              "family_name": "Lovelace", "location": "London",
                              "attributes": {"organization": "Analytical"}}
    assert values["1002"]["location"] is None
    assert values["1002"]["attributes"] == {}


def test_cells_are_trimmed_and_blank_lines_skipped() -> None:
    data = ("employee_id,given_name,family_name,department\r\n"
            "  E1 ,  Zoë  , O'Brien ,  \r\n"
            "\r\n"
            ",,,\r\n"
            "E2,Ada,Lovelace,Maths\r\n").encode()
    feed = parse_csv(data, mapping={})
    assert feed.errors == [] and feed.rows == 2
    assert feed.records[0].values == {"employee_id": "E1", "given_name": "Zoë",
                                      "family_name": "O'Brien", "department": None}
    assert feed.records[1].row == 5  # blank records keep their number


@pytest.mark.parametrize(("cell", "expected"), [
    ("yes", True), ("YES", True), ("true", True), ("1", True), ("no", False),
    ("False", False), ("0", False), ("", None)])
def test_immediate_termination_flags(cell: str, expected: bool | None) -> None:
    data = f"employee_id,given_name,family_name,termination_immediate\nE1,A,B,{cell}\n".encode()
    assert _by_id(data, mapping={})["E1"]["termination_immediate"] is expected


@pytest.mark.parametrize("cell", ["17:30", "17:30:15", "00:00"])
def test_termination_times(cell: str) -> None:
    data = f"employee_id,given_name,family_name,termination_time\nE1,A,B,{cell}\n".encode()
    assert _by_id(data, mapping={})["E1"]["termination_time"] == time.fromisoformat(cell)


def _errors(header: str, *rows: str) -> list[RowError]:
    feed = parse_csv("\n".join([header, *rows, ""]).encode(), mapping={})
    assert feed.records == []
    return feed.errors


@pytest.mark.parametrize("cell", ["15/01/2026", "2026-1-5", "20260115", "2026-02-30",
                                  "2026-W03-1", "tomorrow"])
def test_only_iso_dates_are_accepted(cell: str) -> None:
    [error] = _errors("employee_id,given_name,family_name,hire_date", f"E1,A,B,{cell}")
    assert (error.row, error.column, error.employee_id) == (2, "hire_date", "E1")
    assert cell in error.message


@pytest.mark.parametrize(("column", "cell"), [
    ("termination_time", "5pm"), ("termination_time", "1730"), ("termination_time", "25:00"),
    ("termination_immediate", "maybe"), ("employment_type", "freelancer"),
    ("email", "ada.example.com"), ("email", "ada@localhost"), ("email", "a@@example.com"),
    ("email", "ada lovelace@example.com"), ("time_zone", "Mars/Olympus"),
    ("time_zone", "CEST+2")])
def test_bad_values_are_reported_on_their_column(column: str, cell: str) -> None:
    [error] = _errors(f"employee_id,given_name,family_name,{column}", f"E1,A,B,{cell}")
    assert (error.row, error.column, error.employee_id) == (2, column, "E1")


def test_every_problem_of_a_bad_row_is_reported_and_good_rows_kept() -> None:
    data = _hr_file(
        "E1,Zoë,O'Brien,zoe@example.com,,R&D,Paris,Europe/Paris,employee,2026-02-01,,,,,,",
        ",,Nobody,not-an-email,,,,Nowhere/City,wizard,01/02/2026,,,,,,",
        "E3,,,,,,,,,2026-13-01,,,,,,",
        "E4,Ada,Lovelace,,,,,,,,2026-05-31,5pm,perhaps,,,")
    feed = parse_csv(data, mapping=HR_MAPPING)
    assert [r.employee_id for r in feed.records] == ["E1"]
    assert feed.rows == 4
    assert [(e.row, e.column, e.employee_id) for e in feed.errors] == [
        (3, "Work Email", None), (3, "Time Zone", None), (3, "Worker Type", None),
        (3, "Start Date", None), (3, "Employee Number", None), (3, "First Name", None),
        (4, "Start Date", "E3"), (4, "First Name", "E3"), (4, "Last Name", "E3"),
        (5, "End Time", "E4"), (5, "For Cause", "E4")]
    messages = {(e.row, e.column): e.message for e in feed.errors}
    assert messages[(3, "Employee Number")] == "employee id is required"
    assert "YYYY-MM-DD" in messages[(3, "Start Date")]
    assert "valid date" in messages[(4, "Start Date")]


def test_duplicate_employee_ids_reject_every_row_with_that_id() -> None:
    data = (b"employee_id,given_name,family_name\n"
            b"E1,Ada,Lovelace\nE2,Grace,Hopper\nE1,Ada,Byron\nE3,Alan,Turing\n"
            b"E1,Ada,King\nE2,,\n")
    feed = parse_csv(data, mapping={})
    assert [r.employee_id for r in feed.records] == ["E3"]
    duplicates = [e for e in feed.errors if e.column == "employee_id"]
    assert [(e.row, e.employee_id) for e in duplicates] == [
        (2, "E1"), (3, "E2"), (4, "E1"), (6, "E1"), (7, "E2")]
    assert "rows 4, 6" in duplicates[0].message
    assert "row 7" in duplicates[1].message
    # The bad row 7 is reported for its own problems too.
    assert {(e.row, e.column) for e in feed.errors} >= {(7, "given_name"), (7, "family_name")}


def test_a_row_with_the_wrong_number_of_fields_is_rejected() -> None:
    data = (b"employee_id,given_name,family_name,department\n"
            b"E1,Ada,Lovelace\n"
            b"E2,Grace,Hopper,Navy,extra\n"
            b"E3,Alan,Turing,Maths,,\n"
            b"E4,Ada,King,Maths\n"
            b"E4,Ada,King\n")
    feed = parse_csv(data, mapping={})
    assert [r.employee_id for r in feed.records] == ["E3"]  # trailing empty cells are fine
    assert [(e.row, e.column, e.employee_id) for e in feed.errors] == [
        (2, None, "E1"), (3, None, "E2"), (5, "employee_id", "E4"), (6, None, "E4"),
        (6, "employee_id", "E4")]
    assert "3 fields" in feed.errors[0].message


def _format_error(data: bytes, mapping: dict[str, str]) -> FeedFormatError:
    with pytest.raises(FeedFormatError) as caught:
        parse_csv(data, mapping=mapping)
    assert isinstance(caught.value, InvalidInput)
    return caught.value


def test_header_problems_stop_the_whole_file() -> None:
    data = _hr_file("E1,Zoë,O'Brien,,,,,,,,,,,,,").replace(b"Dept", b"Department")
    error = _format_error(data, HR_MAPPING)
    assert [e.field for e in error.errors] == ["header.Dept"]
    assert "department" in error.errors[0].message

    data = b"employee_id,given_name,family_name,given_name\nE1,A,B,C\n"
    error = _format_error(data, {})
    assert [e.field for e in error.errors] == ["header.given_name"]
    assert "columns 2 and 4" in error.errors[0].message

    error = _format_error(b"employee_id,family_name\nE1,B\n", {})
    assert [e.field for e in error.errors] == ["header.given_name"]

    error = _format_error(b"Id,First\nE1,A\n", {"employee_id": "Id", "given_name": "First"})
    assert [e.field for e in error.errors] == ["mapping.family_name"]

    error = _format_error(b"", {})
    assert [e.field for e in error.errors] == ["header"]


def test_an_invalid_mapping_is_refused() -> None:
    error = _format_error(b"a,b,c\n", {"employee_id": "a", "given_name": "a",
                                       "surname": "c", "family_name": " "})
    assert {e.field for e in error.errors} == {"mapping.given_name", "mapping.surname",
                                               "mapping.family_name"}


def test_text_that_is_not_utf8_or_broken_quoting_is_refused() -> None:
    latin1 = "employee_id,given_name,family_name\nE1,Zoë,Brontë\n".encode("latin-1")
    error = _format_error(latin1, {})
    assert error.errors[0].field == "file" and "UTF-8" in error.detail
    broken = b'employee_id,given_name,family_name\nE1,"Ada"x,Lovelace\n'
    assert "row 2" in _format_error(broken, {}).errors[0].message


FILE = ("\ufeffEmployee Number,First Name,Last Name\r\n"
        "E1,Zoë,O'Brien\r\n"
        "E2,\"José María\",\"Ångström\r\nthe Younger\"\r\n").encode()


def test_byte_chunks_split_anywhere_read_the_same() -> None:
    whole = parse_csv(FILE, mapping=HR_MAPPING_MIN)
    for size in (1, 2, 3, 7):
        chunks = [FILE[i:i + size] for i in range(0, len(FILE), size)]
        feed, digest = parse_csv_stream(iter(chunks), mapping=HR_MAPPING_MIN)
        assert feed == whole
        assert digest == hashlib.sha256(FILE).hexdigest()
    assert whole.records[1].values["family_name"] == "Ångström\r\nthe Younger"


HR_MAPPING_MIN = {k: HR_MAPPING[k] for k in ("employee_id", "given_name", "family_name")}


def test_binary_streams_and_files_are_hashed_while_read(tmp_path: Path) -> None:
    feed, digest = parse_csv_stream(io.BytesIO(FILE), mapping=HR_MAPPING_MIN)
    assert [r.values["given_name"] for r in feed.records] == ["Zoë", "José María"]
    assert digest == hashlib.sha256(FILE).hexdigest()
    path = tmp_path / "workers.csv"
    path.write_bytes(FILE)
    assert parse_csv_file(path, mapping=HR_MAPPING_MIN) == (feed, digest)
    with path.open("rb") as stream:
        assert parse_csv(stream, mapping=HR_MAPPING_MIN) == feed
        assert not stream.closed  # the caller's stream is the caller's to close


def test_text_instead_of_bytes_is_a_programming_error() -> None:
    with pytest.raises(TypeError):
        parse_csv("employee_id\n", mapping={})  # type: ignore[arg-type]
