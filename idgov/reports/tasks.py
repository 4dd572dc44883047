"""Scheduled exports: reports the workers export on their own into folders (no cron).

The schedules are the setting ``report_schedules`` (env ``IDGOV_REPORT_SCHEDULES``, a JSON
list), each ``{"report": "entitlements", "params": {"min_risk": "high"}, "format": "csv",
"every_hours": 24, "folder": "/srv/evidence/entitlements"}``. :func:`register_jobs` has the
workers check them every :data:`CHECK_EVERY` (idgov.provisioning.periodic); a schedule is
due when its folder holds no complete export of that report, format and parameters
generated less than ``every_hours`` ago, so the folder itself remembers across restarts and
processes. On PostgreSQL a transaction-scoped advisory lock per schedule keeps two workers
from exporting the same schedule at once. Each export is the ordinary one: ``.partial``
while written, then the file and its signed manifest.

An invalid schedule (unknown report, bad parameters) is logged and skipped; the others run.
"""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from idgov.audit.service import session_signer
from idgov.clock import Clock
from idgov.config import Settings
from idgov.db.session import unit_of_work
from idgov.errors import DomainError
from idgov.provisioning.periodic import register_job
from idgov.reports import store
from idgov.reports.export import ExportPlan, plan_export, run_export
from idgov.reports.manifest import load_manifest
from idgov.types import Actor

log = logging.getLogger(__name__)

CHECK_EVERY = timedelta(minutes=5)
JOB_NAME = "report_exports"


class ReportSchedule(BaseModel):
    """One scheduled export."""

    model_config = ConfigDict(extra="forbid")

    report: str
    params: dict[str, str | int | float | bool | list[str]] = Field(default_factory=dict)
    format: Literal["csv", "jsonl", "xlsx"] = "csv"
    every_hours: float = Field(gt=0)
    folder: Path


def load_schedules(settings: Settings) -> list[ReportSchedule]:
    """The valid schedules of ``settings.report_schedules`` (absent: none); invalid ones are
    logged and left out."""
    raw: Any = settings.report_schedules or []
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError:
            log.error("report_schedules is not JSON: no scheduled exports")
            return []
    if not isinstance(raw, list):
        log.error("report_schedules is not a list: no scheduled exports")
        return []
    schedules = []
    for number, item in enumerate(raw):
        try:
            schedules.append(TypeAdapter(ReportSchedule).validate_python(item))
        except ValidationError as exc:
            log.error("report schedule %d is invalid: %s", number,
                      "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}"
                                for e in exc.errors()))
    return schedules


def _text_params(schedule: ReportSchedule) -> dict[str, Any]:
    return {k: (v if isinstance(v, list) else str(v).lower() if isinstance(v, bool) else str(v))
            for k, v in schedule.params.items()}


def _lock_key(schedule: ReportSchedule) -> int:
    text = json.dumps(schedule.model_dump(mode="json"), sort_keys=True)
    return int.from_bytes(hashlib.sha256(f"idgov.report-schedule:{text}".encode()).digest()[:8],
                          "big", signed=True)


def _due(plan: ExportPlan, every: timedelta) -> bool:
    """No complete export of this report, format and parameters younger than ``every``."""
    wanted = plan.params.model_dump(mode="json")
    for found in store.list_exports(plan.folder):  # newest first
        if plan.generated_at - found.generated_at >= every:
            return True
        if (found.state != "complete" or found.report != store.safe_report_name(
                plan.report.name) or found.format != plan.format.name):
            continue
        try:
            manifest = load_manifest(found.manifest_path)
        except ValueError:
            continue
        if manifest["report"] == plan.report.name and manifest["parameters"] == wanted:
            return False
    return True


def _run_one(factory: sessionmaker[Session], schedule: ReportSchedule, clock: Clock) -> bool:
    plan = plan_export(report=schedule.report, params=_text_params(schedule),
                       format=schedule.format, folder=schedule.folder, clock=clock)
    with unit_of_work(factory) as session:
        if session.get_bind().dialect.name == "postgresql" and not session.scalar(
                select(func.pg_try_advisory_xact_lock(_lock_key(schedule)))):
            return False  # another worker is exporting it now
        if not _due(plan, timedelta(hours=schedule.every_hours)):
            return False
        signer = session_signer(session)
        if signer is None:
            raise RuntimeError("no audit signer to sign the manifest")
        result = run_export(session, plan=plan, signer=signer, clock=clock)
    log.info("scheduled export of %s: %d rows to %s", schedule.report, result.rows,
             result.path)
    return True


def run_scheduled_exports(factory: sessionmaker[Session], settings: Settings, clock: Clock,
                          actor: Actor) -> int:
    """Run every schedule that is due now; returns how many exports were written."""
    done = 0
    for schedule in load_schedules(settings):
        try:
            done += _run_one(factory, schedule, clock)
        except DomainError as exc:
            log.error("scheduled export of %s refused: %s", schedule.report, exc.detail)
        except Exception as exc:
            log.error("scheduled export of %s failed: %s", schedule.report,
                      type(exc).__name__)
    return done


def register_jobs() -> None:
    """Have the workers run the scheduled exports (composition roots call this)."""
    register_job(JOB_NAME, every=CHECK_EVERY, job=run_scheduled_exports)
