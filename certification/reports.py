"""Certification evidence in the core's report registry: ``certification_evidence`` (one
row per review item of a campaign, the columns of :mod:`certification.evidence`), exported
like every report (CSV, JSON Lines, XLSX with a signed manifest: ``idgov reports export
certification_evidence --param campaign=<id>``, ``GET /reports/certification_evidence/
export?campaign=<id>``)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy.orm import Session

from certification.evidence import COLUMNS, report_campaign, report_rows
from idgov.clock import Clock
from idgov.reports.common import ReportParams, typed_build
from idgov.reports.registry import ReportDef, ReportQuery, register_report


class EvidenceParams(ReportParams):
    campaign: uuid.UUID


def _build(session: Session, params: EvidenceParams, clock: Clock) -> ReportQuery:
    del clock
    report_campaign(session, campaign_id=params.campaign)  # NotFound before any byte

    def rows() -> Iterator[Sequence[Any]]:
        for row in report_rows(session, campaign_id=params.campaign):
            yield tuple(row[key] for key in COLUMNS)

    return ReportQuery(columns=COLUMNS, rows=rows)


EVIDENCE = ReportDef(
    name="certification_evidence", title="Certification evidence",
    description="Every review item of a campaign: the person and the access, how it was "
                "granted, the reviewer, the decision (who, when, comment) and what became of "
                "it (remediation: requested, confirmed by reconciliation, failed, escalated).",
    params=EvidenceParams, build=typed_build(EvidenceParams, _build), columns=COLUMNS)


def register_reports() -> None:
    """Add certification's reports to the core's registry (idempotent)."""
    register_report(EVIDENCE)
