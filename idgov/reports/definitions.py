"""The core's report definitions, registered by :func:`register_core_reports`.

- ``entitlements`` (SQL, a recursive CTE): every grant in force, identity x entitlement x
  way held, with account, source, approvers, dates, certification, risk;
- ``entitlements_as_of`` (SQL): the same at a past instant ``as_of``;
- ``privileged_access`` (SQL): privileged and high/critical-risk grants;
- ``sod_violations`` (rows, the policy's scan): rules broken now, both sides and how each
  is held, the exception mitigating it;
- ``sod_exceptions`` (SQL): every SoD exception, control, approver, expiry, status;
- ``jml`` (SQL): joiners, movers, leavers of a period and their provisioning times;
- ``drift`` (SQL): drift items of each application's latest reconciliation;
- ``orphan_accounts`` (SQL): accounts nobody holds or owns.

Each module's docstring documents its columns, filters and what "current" versus
"historical" means for it.
"""

from __future__ import annotations

from idgov.reports import drift, entitlements, jml, point_in_time, privileged, sod
from idgov.reports.registry import ReportDef, register_report

CORE_REPORTS: tuple[ReportDef, ...] = (
    entitlements.REPORT,
    point_in_time.REPORT,
    privileged.REPORT,
    sod.VIOLATIONS,
    sod.EXCEPTIONS,
    jml.REPORT,
    drift.DRIFT,
    drift.ORPHANS,
)


def register_core_reports() -> None:
    """Register the core reports (idempotent: registering again replaces them by name)."""
    for report in CORE_REPORTS:
        register_report(report)
