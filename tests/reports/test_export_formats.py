"""The export formats on their own (pure): CSV quoting, JSON Lines types, XLSX sheets, and
the LF-to-CRLF pass over COPY's output."""

from __future__ import annotations

import json
import re
import uuid
import zipfile
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from xml.etree import ElementTree

from idgov.reports.dbcsv import crlf_records
from idgov.reports.formats import csv_chunks, jsonl_chunks, write_xlsx

AT = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def test_csv_quotes_what_rfc4180_requires_and_keeps_null_apart_from_empty() -> None:
    rows = [
        ("plain", "a,b", 'say "hi"', "two\nlines", "cr\r", "", None, "Zoë"),
        (True, False, 0, -7, Decimal("1.50"), AT, date(2026, 2, 28),
         uuid.UUID("12345678-1234-5678-1234-567812345678")),
        (datetime(2026, 3, 1, 10, 30, 0, 5, tzinfo=timezone(timedelta(hours=1))),
         datetime(2026, 3, 1, 9, 0), "\\.", " padded ", "=1+2", "'", "tab\there", "x"),
    ]
    data = b"".join(csv_chunks([f"c{i}" for i in range(8)], rows))
    assert data.decode("utf-8") == (
        "c0,c1,c2,c3,c4,c5,c6,c7\r\n"
        'plain,"a,b","say ""hi""","two\nlines","cr\r","",,Zoë\r\n'
        "true,false,0,-7,1.50,2026-03-01T09:00:00+00:00,2026-02-28,"
        "12345678-1234-5678-1234-567812345678\r\n"
        "2026-03-01T09:30:00.000005+00:00,2026-03-01T09:00:00+00:00,\\., padded ,=1+2,',"
        "tab\there,x\r\n")


def test_a_single_column_quotes_a_lone_backslash_dot_as_postgresql_does() -> None:
    data = b"".join(csv_chunks(["only"], [("\\.",), ("",), (None,), ("a",)]))
    assert data == b'only\r\n"\\."\r\n""\r\n\r\na\r\n'


def test_csv_streams_in_chunks_and_counts_rows() -> None:
    seen: list[int] = []
    chunks = list(csv_chunks(["n"], ((n,) for n in range(4500)), seen.append))
    assert len(chunks) == 1 + 3  # header, 2000, 2000, 500
    assert seen == [2000, 2000, 500]
    assert b"".join(chunks).count(b"\r\n") == 4501


def test_jsonl_keeps_numbers_booleans_and_nulls_typed() -> None:
    rows = [(1, True, None, "x\ny", AT, Decimal("2.5"), {"k": [1, 2]}, 1.25)]
    line = b"".join(jsonl_chunks(["i", "b", "n", "s", "t", "d", "j", "f"], rows))
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert json.loads(line) == {"i": 1, "b": True, "n": None, "s": "x\ny",
                                "t": "2026-03-01T09:00:00+00:00", "d": "2.5",
                                "j": {"k": [1, 2]}, "f": 1.25}
    assert list(json.loads(line)) == ["i", "b", "n", "s", "t", "d", "j", "f"]


def test_crlf_replaces_record_ends_but_not_line_breaks_inside_quotes_across_blocks() -> None:
    blocks = [b'1,"a\n', b'b",x\n2,"c""', b'\nd"\n3,e\n']
    out, in_quotes = [], False
    for block in blocks:
        data, in_quotes = crlf_records(block, in_quotes)
        out.append(data)
    assert b"".join(out) == b'1,"a\nb",x\r\n2,"c""\nd"\r\n3,e\r\n'
    assert in_quotes is False


_NS = {"m": "http://schemas.openxmlformats.org/spreadsheetml/2006/main"}


def _read_xlsx(path: Path) -> dict[str, list[list[str]]]:
    """Sheet name -> rows of cell texts (inline strings, numbers, booleans as 0/1)."""
    with zipfile.ZipFile(path) as archive:
        book = ElementTree.fromstring(archive.read("xl/workbook.xml"))  # noqa: S314 (ours)
        names = [s.get("name") for s in book.iterfind(".//m:sheet", _NS)]
        sheets: dict[str, list[list[str]]] = {}
        for number, name in enumerate(names, start=1):
            sheet_xml = archive.read(f"xl/worksheets/sheet{number}.xml")
            root = ElementTree.fromstring(sheet_xml)  # noqa: S314 (our own file)
            rows = []
            for row in root.iterfind(".//m:sheetData/m:row", _NS):
                cells = []
                for cell in row.iterfind("m:c", _NS):
                    text = cell.find("m:is/m:t", _NS)
                    value = cell.find("m:v", _NS)
                    cells.append(text.text if text is not None else
                                 value.text if value is not None else "")
                rows.append(cells)
            sheets[str(name)] = rows
    return sheets


def test_xlsx_continues_on_a_new_sheet_with_the_header_repeated(tmp_path: Path) -> None:
    path = tmp_path / "out.xlsx"
    rows = [(n, f"name {n}", n % 2 == 0) for n in range(7)]
    count = write_xlsx(path, ["n", "name", "even"], rows, sheet_name="grants", max_rows=3)
    assert count == 7
    assert _read_xlsx(path) == {
        "grants": [["n", "name", "even"], ["0", "name 0", "1"], ["1", "name 1", "0"]],
        "grants 2": [["n", "name", "even"], ["2", "name 2", "1"], ["3", "name 3", "0"]],
        "grants 3": [["n", "name", "even"], ["4", "name 4", "1"], ["5", "name 5", "0"]],
        "grants 4": [["n", "name", "even"], ["6", "name 6", "1"]],
    }


def test_xlsx_writes_text_as_text_and_timestamps_as_utc_dates(tmp_path: Path) -> None:
    path = tmp_path / "out.xlsx"
    write_xlsx(path, ["formula", "at", "none"], [("=1+2", AT, None)], sheet_name="r")
    sheet = _read_xlsx(path)["r"]
    assert sheet[1][0] == "=1+2"
    assert float(sheet[1][1]) == 46082.375  # 2026-03-01 09:00 as an Excel serial date
    with zipfile.ZipFile(path) as archive:
        styles = archive.read("xl/styles.xml").decode()
    assert re.search(r'formatCode="yyyy-mm-dd&quot;T&quot;hh:mm:ss&quot;Z&quot;"', styles)


def test_xlsx_of_no_rows_is_a_header_alone(tmp_path: Path) -> None:
    path = tmp_path / "out.xlsx"
    assert write_xlsx(path, ["a", "b"], [], sheet_name="empty") == 0
    assert _read_xlsx(path) == {"empty": [["a", "b"]]}
