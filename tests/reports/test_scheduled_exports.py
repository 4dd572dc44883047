"""Scheduled exports on both backends: a due schedule drops a signed export into its folder,
the folder remembers it (not due again until its period has passed), bad schedules are
skipped without stopping the others, and the workers' periodic run drives it."""
# ruff: noqa: F811  (the fixtures imported from export_fixtures are parameters here)

from __future__ import annotations

import json
import logging
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from idgov.audit.signing import Signer, Verifier
from idgov.clock import FixedClock
from idgov.config import Settings
from idgov.provisioning import periodic
from idgov.provisioning.periodic import run_due_jobs
from idgov.reports.manifest import verify
from idgov.reports.tasks import JOB_NAME, register_jobs, run_scheduled_exports
from idgov.types import Actor
from tests.reports.export_fixtures import exports, test_reports, world  # noqa: F401 (fixtures)
from tests.reports.export_world import expected_grants_csv


class ScheduledSettings(Settings):
    """Settings with the attribute the composition root's Settings will carry."""

    report_schedules: list[dict[str, Any]] = []


def _settings(tmp_path: Path, schedules: list[dict[str, Any]]) -> Settings:
    return ScheduledSettings(var_dir=tmp_path / "var", report_schedules=schedules,
                             reconcile_interval_hours=0, sweep_interval_minutes=0,
                             lifecycle_interval_minutes=0)


def _completed(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix == ".csv")


def test_a_due_schedule_drops_a_signed_export_and_waits_for_its_period(
        session_factory: sessionmaker[Session], clock: FixedClock, signer: Signer,
        exports: Path, tmp_path: Path, world: dict[str, uuid.UUID]) -> None:
    settings = _settings(tmp_path, [
        {"report": "test-grants", "format": "csv", "every_hours": 24,
         "folder": str(exports / "all")},
        {"report": "test-grants", "params": {"privileged": True}, "every_hours": 24,
         "folder": str(exports / "all")}])
    actor = Actor.system("tests")
    assert run_scheduled_exports(session_factory, settings, clock, actor) == 2
    files = _completed(exports / "all")
    assert len(files) == 2
    assert expected_grants_csv(world) in [f.read_bytes() for f in files]
    verifier = Verifier(keys={signer.key_id: signer.public_key})
    for file in files:
        assert verify(file, file.with_name(file.name + ".manifest.json"), verifier).ok
    clock.advance(timedelta(hours=23, minutes=59))
    assert run_scheduled_exports(session_factory, settings, clock, actor) == 0
    clock.advance(timedelta(minutes=1))
    assert run_scheduled_exports(session_factory, settings, clock, actor) == 2
    assert len(_completed(exports / "all")) == 4


def test_bad_schedules_are_logged_and_the_others_still_run(
        session_factory: sessionmaker[Session], clock: FixedClock, exports: Path,
        tmp_path: Path, world: dict[str, uuid.UUID],
        caplog: pytest.LogCaptureFixture) -> None:
    settings = _settings(tmp_path, [
        {"report": "no-such", "every_hours": 1, "folder": str(exports / "a")},
        {"report": "test-grants", "params": {"colour": "red"}, "every_hours": 1,
         "folder": str(exports / "b")},
        {"report": "test-grants", "every_hours": 0, "folder": str(exports / "c")},
        {"report": "test-grants", "every_hours": 1, "folder": str(exports / "d")}])
    with caplog.at_level(logging.ERROR, logger="idgov.reports.tasks"):
        assert run_scheduled_exports(session_factory, settings, clock,
                                     Actor.system("tests")) == 1
    messages = [r.getMessage() for r in caplog.records]
    assert any(m.startswith("report schedule 2 is invalid: every_hours") for m in messages)
    assert "scheduled export of no-such refused: there is no report 'no-such'" in messages
    assert "scheduled export of test-grants refused: invalid parameters for report " \
           "test-grants" in messages
    assert [p.name for p in exports.iterdir()] == ["d"]


def test_the_workers_periodic_run_drives_the_schedules(
        session_factory: sessionmaker[Session], clock: FixedClock, exports: Path,
        tmp_path: Path, world: dict[str, uuid.UUID],
        monkeypatch: pytest.MonkeyPatch) -> None:
    settings = _settings(tmp_path, [{"report": "test-grants", "format": "jsonl",
                                     "every_hours": 6, "folder": str(exports)}])
    # The registration lasts for this test only (other tests count the periodic jobs).
    monkeypatch.setattr(periodic, "_PLUGIN_JOBS", dict(periodic._PLUGIN_JOBS))
    register_jobs()
    counts = run_due_jobs(session_factory, settings=settings, clock=clock)
    assert counts[JOB_NAME] == 1
    [file] = [p for p in exports.iterdir() if p.suffix == ".jsonl"]
    assert [json.loads(line)["employee_id"] for line in file.read_text().splitlines()] == [
        "E001", "E001", "E002", "E003"]
