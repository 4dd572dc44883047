"""Separation-of-duties reports: the violations in force now, and the exceptions granted.

**sod_violations** (one row per identity x broken enabled rule) is the detective scan of
:mod:`idgov.sod_scan` (``rows``, not SQL: a rule is broken when the identity holds an item of
each side *through any path of the role hierarchy*, and the policy's own evaluation is the
one correct statement of that); rows come by employee id, then rule name. Columns:
``employee_id``, ``identity_name``, ``department``,
``rule``, ``severity``, ``side_a``, ``side_b`` (each side's held items with how each is held:
``payments-release (role: Finance Clerk > AP Processor)``, ``vendor-write (direct)``),
``mitigated`` (an active exception covers it), ``exception_id``, ``mitigating_control``,
``exception_expires_at``. Filters: ``rule`` (name or id), ``min_severity``, ``department``,
``include_mitigated`` (default true).

**sod_exceptions** (one row per exception ever granted, SQL): ``rule``, ``severity``, the
holder, ``mitigating_control``, the approver, ``granted_at``, ``expires_at``, ``revoked_at``,
``revoke_reason`` and ``status``: ``revoked``, ``expired`` (its expiry has passed), or
``active``. Filters: ``rule``, ``status``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Literal

from sqlalchemy import case, select
from sqlalchemy.orm import Session, aliased

from idgov.clock import Clock
from idgov.models.catalog import SodException, SodRule
from idgov.models.identity import Identity
from idgov.policy.expansion import Grant
from idgov.policy.sod import HeldItem
from idgov.reports import common
from idgov.reports.common import ReportParams, Risk
from idgov.reports.registry import ReportDef, ReportQuery
from idgov.sod_scan.service import run_scan

VIOLATION_COLUMNS: tuple[str, ...] = (
    "employee_id", "identity_name", "department", "rule", "severity", "side_a", "side_b",
    "mitigated", "exception_id", "mitigating_control", "exception_expires_at",
)
EXCEPTION_COLUMNS: tuple[str, ...] = (
    "rule", "severity", "employee_id", "identity_name", "department", "mitigating_control",
    "approver_employee_id", "approver_name", "granted_at", "expires_at", "revoked_at",
    "revoke_reason", "status", "exception_id",
)
_IN_CHUNK = 500


class ViolationParams(ReportParams):
    rule: str | None = None
    min_severity: Risk | None = None
    department: str | None = None
    include_mitigated: bool = True


class ExceptionParams(ReportParams):
    rule: str | None = None
    status: Literal["active", "expired", "revoked"] | None = None


def _how(grant: Grant) -> str:
    """``direct``, or ``role: A > B``: the roles through which the item is held."""
    if len(grant.path) == 1:
        return "direct"
    return "role: " + " > ".join(step.name for step in grant.path[:-1])


def describe_side(held: Sequence[HeldItem]) -> str:
    """Each held item of one side with every way it is held."""
    parts = []
    for item in held:
        ways = ", ".join(dict.fromkeys(_how(g) for g in item.grants))
        parts.append(f"{item.name} ({ways})")
    return "; ".join(parts)


def _departments(session: Session, ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, str | None]:
    wanted = sorted(set(ids), key=str)
    found: dict[uuid.UUID, str | None] = {}
    for start in range(0, len(wanted), _IN_CHUNK):
        found.update((i, d) for i, d in session.execute(
            select(Identity.id, Identity.department).where(
                Identity.id.in_(wanted[start:start + _IN_CHUNK]))))
    return found


def build_violations(session: Session, params: ViolationParams, clock: Clock) -> ReportQuery:
    """The violations in force now (rows from the policy's detective scan)."""
    rule_id = common.sod_rule_id(session, params.rule) if params.rule is not None else None
    severities = set(common.risks_at_least(params.min_severity or "low"))

    def rows() -> Iterator[Sequence[Any]]:
        findings = sorted(
            (f for f in run_scan(session, as_of=None, clock=clock, rule_id=rule_id,
                                 include_mitigated=params.include_mitigated).findings
             if f.violation.rule.severity in severities),
            key=lambda f: (f.identity.employee_id, f.violation.rule.name))
        departments = _departments(session, (f.identity.id for f in findings))
        for finding in findings:
            department = departments.get(finding.identity.id)
            if params.department is not None and department != params.department:
                continue
            v = finding.violation
            exception = v.exception
            yield (finding.identity.employee_id, finding.identity.display_name, department,
                   v.rule.name, v.rule.severity, describe_side(v.side_a),
                   describe_side(v.side_b), v.mitigated,
                   exception.id if exception else None,
                   exception.control if exception else None,
                   exception.expires_at if exception else None)

    return ReportQuery(columns=VIOLATION_COLUMNS, rows=rows)


def build_exceptions(session: Session, params: ExceptionParams, clock: Clock) -> ReportQuery:
    """Every SoD exception with its control, approver, expiry and status now."""
    now = clock.now()
    holder, approver = aliased(Identity), aliased(Identity)
    status = case((SodException.revoked_at.is_not(None), "revoked"),
                  (SodException.expires_at <= now, "expired"), else_="active")
    stmt: Any = (
        select(SodRule.name.label("rule"), SodRule.severity.label("severity"),
               holder.employee_id.label("employee_id"),
               holder.display_name.label("identity_name"),
               holder.department.label("department"),
               SodException.control.label("mitigating_control"),
               approver.employee_id.label("approver_employee_id"),
               approver.display_name.label("approver_name"),
               SodException.created_at.label("granted_at"),
               SodException.expires_at.label("expires_at"),
               SodException.revoked_at.label("revoked_at"),
               SodException.revoke_reason.label("revoke_reason"),
               status.label("status"), SodException.id.label("exception_id"))
        .join(SodRule, SodRule.id == SodException.rule_id)
        .join(holder, holder.id == SodException.identity_id)
        .outerjoin(approver, approver.id == SodException.approver_id)
        .order_by(SodRule.name, holder.employee_id, SodException.created_at, SodException.id)
    )
    if params.rule is not None:
        stmt = stmt.where(SodException.rule_id == common.sod_rule_id(session, params.rule))
    if params.status is not None:
        stmt = stmt.where(status == params.status)
    return ReportQuery(columns=EXCEPTION_COLUMNS, select=stmt)


VIOLATIONS = ReportDef(
    name="sod_violations",
    title="Separation-of-duties violations",
    description="Every identity breaking an enabled SoD rule now: both sides held and how, "
                "and the exception that mitigates it, if any.",
    params=ViolationParams,
    build=common.typed_build(ViolationParams, build_violations),
    columns=VIOLATION_COLUMNS,
)
EXCEPTIONS = ReportDef(
    name="sod_exceptions",
    title="Separation-of-duties exceptions",
    description="Every SoD exception granted: mitigating control, approver, expiry, and "
                "whether it is active, expired or revoked.",
    params=ExceptionParams,
    build=common.typed_build(ExceptionParams, build_exceptions),
    columns=EXCEPTION_COLUMNS,
)
