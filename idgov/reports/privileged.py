"""The privileged access report: who holds privileged or high-risk access, how, since when,
and when it was last certified.

The grants of the entitlement report (:mod:`idgov.reports.entitlements`, one row per
identity x entitlement x way held, in force now) whose entitlement is *privileged* or of
risk ``min_risk`` or above (default ``high``: high and critical). Columns: ``employee_id``,
``identity_name``, ``identity_state``, ``department``, ``manager_name``, ``application``,
``account``, ``entitlement``, ``risk``, ``privileged``, ``how_held``, ``source``,
``request_number``, ``approvers``, ``held_since``, ``expires_at``, ``last_certified_at``,
``last_certified_by``. Filters: ``application``, ``department``, ``manager``, ``min_risk``,
``privileged_only`` (only entitlements flagged privileged, whatever their risk).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from idgov.clock import Clock
from idgov.reports import common
from idgov.reports.common import ReportParams, Risk
from idgov.reports.entitlements import EntitlementFilters, grants_select
from idgov.reports.registry import ReportDef, ReportQuery

COLUMNS: tuple[str, ...] = (
    "employee_id", "identity_name", "identity_state", "department", "manager_name",
    "application", "account", "entitlement", "risk", "privileged", "how_held", "source",
    "request_number", "approvers", "held_since", "expires_at", "last_certified_at",
    "last_certified_by",
)


class PrivilegedParams(ReportParams):
    application: str | None = None
    department: str | None = None
    manager: str | None = None
    min_risk: Risk = "high"
    privileged_only: bool = False


def build(session: Session, params: PrivilegedParams, clock: Clock) -> ReportQuery:
    """Privileged and high-risk grants in force now."""
    filters = EntitlementFilters(application=params.application, department=params.department,
                                 manager=params.manager,
                                 privileged=True if params.privileged_only else None)
    grants = grants_select(session, filters, at=clock.now()).subquery("grants")
    wanted: Any = grants.c.privileged.is_(True)
    if not params.privileged_only:
        wanted = or_(wanted, grants.c.risk.in_(common.risks_at_least(params.min_risk)))
    stmt = (select(*(grants.c[name] for name in COLUMNS)).where(wanted)
            .order_by(grants.c.employee_id, grants.c.application, grants.c.entitlement,
                      grants.c.how_held))
    return ReportQuery(columns=COLUMNS, select=stmt)


REPORT = ReportDef(
    name="privileged_access",
    title="Privileged access",
    description="Who holds privileged or high/critical-risk entitlements, how, since when, "
                "and when that access was last certified.",
    params=PrivilegedParams,
    build=common.typed_build(PrivilegedParams, build),
    columns=COLUMNS,
)
