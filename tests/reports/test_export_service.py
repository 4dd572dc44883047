"""The export service on both backends: the file, its manifest, the database CSV paths
(COPY on PostgreSQL, values turned to CSV text by SQLite) byte-identical to the Python writer,
parameters validated before anything runs, interrupted exports left partial."""
# ruff: noqa: F811  (the fixtures imported from export_fixtures are parameters here)

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from idgov.audit.signing import Signer, Verifier
from idgov.clock import FixedClock
from idgov.db.session import unit_of_work
from idgov.errors import InvalidInput, NotFound
from idgov.reports import manifest as manifests
from idgov.reports.export import ExportResult, plan_export, run_export, stream_export
from tests.reports.export_fixtures import exports, test_reports, world  # noqa: F401 (fixtures)
from tests.reports.export_world import Generated, expected_grants_csv


def _export(factory: sessionmaker[Session], clock: FixedClock, signer: Signer, folder: Path,
            fmt: str = "csv", database_csv: bool = True, **params: object) -> ExportResult:
    plan = plan_export(report="test-grants", params=params, format=fmt, folder=folder,
                       clock=clock)
    with unit_of_work(factory) as session:
        return run_export(session, plan=plan, signer=signer, clock=clock,
                          database_csv=database_csv)


@pytest.mark.parametrize("database_csv", [True, False], ids=["database", "python"])
def test_csv_export_is_rfc4180_with_iso_utc_timestamps(
        session_factory: sessionmaker[Session], clock: FixedClock, signer: Signer,
        exports: Path,
        world: dict[str, uuid.UUID], db_url: str,
        database_csv: bool) -> None:
    result = _export(session_factory, clock, signer, exports, database_csv=database_csv)
    assert result.path.read_bytes() == expected_grants_csv(world)
    expected_writer = ("copy" if db_url.startswith("postgresql") else "sql") \
        if database_csv else "python"
    assert result.writer == expected_writer
    assert result.rows == 4


def test_database_and_python_csv_are_byte_identical_with_filters(
        session_factory: sessionmaker[Session], clock: FixedClock, signer: Signer,
        exports: Path,
        world: dict[str, uuid.UUID]) -> None:
    filters = {"granted_after": "2026-01-11T00:00:00+00:00", "application": "ledger"}
    by_db = _export(session_factory, clock, signer, exports / "a", **filters)
    by_python = _export(session_factory, clock, signer, exports / "b", database_csv=False,
                        **filters)
    data = by_db.path.read_bytes()
    assert data == by_python.path.read_bytes()
    assert data.count(b"\r\n") == 3  # the header and g2, g4


def test_manifest_describes_and_signs_the_file(
        session_factory: sessionmaker[Session], clock: FixedClock, signer: Signer,
        exports: Path,
        world: dict[str, uuid.UUID]) -> None:
    result = _export(session_factory, clock, signer, exports, privileged="true")
    path: Path = result.path
    export_id = result.export_id
    assert path.name == f"test-grants-20260115T090000Z-{export_id.hex}.csv"
    assert sorted(p.name for p in exports.iterdir()) == [path.name,
                                                          path.name + ".manifest.json"]
    manifest = json.loads((exports / (path.name + ".manifest.json")).read_text())
    signature = manifest.pop("signature")
    assert manifest == {
        "manifest_version": 1, "export_id": str(export_id), "report": "test-grants",
        "parameters": {"application": None, "privileged": True, "granted_after": None,
                       "department": None},
        "generated_at": "2026-01-15T09:00:00+00:00", "format": "csv", "file": path.name,
        "bytes": path.stat().st_size, "rows": 1,
        "sha256": manifests.file_digest(path)[0],
        "columns": ["employee_id", "name", "department", "hire_date", "application",
                    "entitlement", "privileged", "max_days", "reason", "granted_at",
                    "revoked_at", "assignment_id"],
        "signature_algorithm": "Ed25519", "key_id": signer.key_id}
    verifier = Verifier(keys={signer.key_id: signer.public_key})
    assert manifests.verify(path, exports / (path.name + ".manifest.json"), verifier).ok
    assert signature


def test_jsonl_keeps_types_and_column_order(
        session_factory: sessionmaker[Session], clock: FixedClock, signer: Signer,
        exports: Path,
        world: dict[str, uuid.UUID]) -> None:
    result = _export(session_factory, clock, signer, exports, fmt="jsonl",
                     department=["Finance"])
    lines = result.path.read_text(encoding="utf-8").splitlines()
    first = json.loads(lines[0])
    assert list(first) == ["employee_id", "name", "department", "hire_date", "application",
                           "entitlement", "privileged", "max_days", "reason", "granted_at",
                           "revoked_at", "assignment_id"]
    assert [json.loads(line) for line in lines] == [
        {"employee_id": "E001", "name": 'Lovelace, Ada "the first"', "department": "Finance",
         "hire_date": "2020-02-29", "application": "ledger", "entitlement": "Payments approver",
         "privileged": True, "max_days": 30, "reason": "audit, year-end",
         "granted_at": "2026-01-10T08:30:00+00:00", "revoked_at": None,
         "assignment_id": str(world["g1"])},
        {"employee_id": "E001", "name": 'Lovelace, Ada "the first"', "department": "Finance",
         "hire_date": "2020-02-29", "application": "ledger", "entitlement": "Reader",
         "privileged": False, "max_days": None, "reason": "",
         "granted_at": "2026-01-12T17:05:09.123456+00:00",
         "revoked_at": "2026-01-12T17:05:09.123456+00:00", "assignment_id": str(world["g2"])},
    ]


def test_unknown_and_malformed_parameters_are_refused_before_anything_runs(
        exports: Path, clock: FixedClock, test_reports: Generated) -> None:
    with pytest.raises(InvalidInput) as caught:
        plan_export(report="test-grants", format="csv", folder=exports, clock=clock,
                    params=[("colour", "red"), ("privileged", "maybe"),
                            ("application", "a"), ("application", "b")])
    fields = sorted((e.field, e.message) for e in caught.value.errors)
    assert [f for f, _ in fields] == ["application", "colour", "privileged"]
    assert "unknown filter" in dict(fields)["colour"]
    with pytest.raises(InvalidInput) as caught:
        plan_export(report="test-grants", format="csv", folder=exports, clock=clock,
                    params={"privileged": "maybe", "granted_after": "1 March"})
    assert sorted(e.field for e in caught.value.errors) == ["granted_after", "privileged"]
    with pytest.raises(InvalidInput) as caught:
        plan_export(report="test-grants", format="pdf", folder=exports, clock=clock,
                    params={})
    assert [e.field for e in caught.value.errors] == ["format"]
    with pytest.raises(NotFound):
        plan_export(report="no-such-report", format="csv", folder=exports, clock=clock,
                    params={})
    assert not exports.exists()  # nothing was written


def test_an_export_failing_midway_stays_partial_without_manifest(
        session_factory: sessionmaker[Session], clock: FixedClock, signer: Signer,
        exports: Path, test_reports: Generated) -> None:
    plan = plan_export(report="test-generated", params={"rows": "5000", "fail_after": "4500"},
                       format="csv", folder=exports, clock=clock)
    with pytest.raises(OSError, match="No space left"), unit_of_work(session_factory) as s:
        run_export(s, plan=plan, signer=signer, clock=clock)
    assert [p.name for p in exports.iterdir()] == [plan.file_name + ".partial"]
    written = (exports / (plan.file_name + ".partial")).read_bytes()
    assert written.startswith(b"n,text,flag,at\r\n0,\"row 0, with a comma\",true,")
    assert written.count(b"\r\n") == 1 + 4000  # the chunks written before the failure


def test_a_stream_closed_by_its_consumer_stays_partial_without_manifest(
        session_factory: sessionmaker[Session], clock: FixedClock, signer: Signer,
        exports: Path, test_reports: Generated) -> None:
    plan = plan_export(report="test-generated", params={"rows": "100000"}, format="jsonl",
                       folder=exports, clock=clock)
    with unit_of_work(session_factory) as session:
        stream = stream_export(session, plan=plan, signer=signer, clock=clock)
        first = next(stream)
        stream.close()  # what the HTTP endpoint does when the client goes away
    assert json.loads(first.splitlines()[0]) == {
        "n": 0, "text": "row 0, with a comma", "flag": True,
        "at": "2026-01-10T08:30:00+00:00"}
    assert test_reports.closed_early
    assert [p.name for p in exports.iterdir()] == [plan.file_name + ".partial"]
