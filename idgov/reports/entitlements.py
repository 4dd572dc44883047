"""The entitlement report: who holds which entitlement, how, why, since when.

**One row per grant**: identity x entitlement x the way it is held. An entitlement held
directly and through a role, or through two roles, gives one row per path, because each
path has its own justification (request and approvers, birthright rule, admin reason), its
own dates and its own certification: revoking one of them leaves the others, and an auditor
must see every one. ``how_held`` is ``direct`` for an entitlement assigned as such, else
``role: A > B > C``: the assigned role A, the roles it includes down to C, which grants the
entitlement. A report of distinct identity x entitlement pairs is the same file with the
duplicates of (``employee_id``, ``application``, ``entitlement``) dropped.

Columns:

- ``employee_id``, ``identity_name``, ``identity_state``, ``department``,
  ``manager_employee_id``, ``manager_name``: the holder and their manager (current values);
- ``application``; ``account``, ``account_native_id``, ``account_status``: the holder's
  primary account on that application, if any (login name, id in the target);
- ``entitlement``, ``entitlement_native_id``, ``risk``, ``privileged``;
- ``how_held``: see above;
- ``source``: ``request``, ``birthright``, ``admin`` or ``aggregation``; ``request_number``
  and ``request_line_number`` (REQ-/RITM-) of a requested grant, ``birthright_rule`` (the
  rule's name), ``reason`` (the assignment's reason: an administrator's justification);
- ``approvers``: who approved the request line, in the order they decided, ``Name (employee
  id)``, ``Name (E1) for Other (E2)`` for a delegate; empty for a line nobody had to approve;
- ``granted_by``, ``granted_at`` (the assignment's start), ``held_since`` (the later of that
  and the start of every role composition link on the path: a role that gained the
  entitlement later gives it later), ``expires_at`` (the assignment's end as recorded: a
  time-bound grant, or an end scheduled for a mover; empty when open-ended);
- ``last_certified_at``, ``last_certified_by``: the assignment's last certification;
- ``assignment_id``: the assignment behind the row.

Filters: ``application`` (name or id), ``entitlement`` (name, native id or id),
``department``, ``manager`` (the manager's employee id or id), ``identity`` (employee id or
id), ``min_risk`` (that risk and above), ``privileged``, ``source``.

The statement is one ``SELECT``: role expansion is a recursive CTE over the role
composition links valid at the instant (depth-limited to :data:`MAX_DEPTH`, so bad data
with a cycle ends instead of looping); it is computed per role, not per holder, and joined
to the assignments. :mod:`idgov.reports.point_in_time` runs the same statement at a past
instant.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import (
    CTE,
    Select,
    Text,
    and_,
    case,
    cast,
    literal,
    literal_column,
    null,
    or_,
    select,
)
from sqlalchemy.orm import Session, aliased

from idgov.clock import Clock
from idgov.db.base import UTCDateTime
from idgov.models.application import Account, Application
from idgov.models.assignment import Assignment
from idgov.models.catalog import Entitlement, Role, RoleEntitlement, RoleInclusion
from idgov.models.hr import BirthrightRule
from idgov.models.identity import Identity
from idgov.models.requests import AccessRequest, Approval, ApprovalStep, RequestLine
from idgov.reports import common
from idgov.reports.common import ReportParams, Risk
from idgov.reports.registry import ReportDef, ReportQuery

# Inclusion chains deeper than this are not followed (the hierarchy is a DAG a few levels
# deep; the bound only guarantees that a cycle in bad data cannot make the query loop).
MAX_DEPTH = 32

Source = Literal["request", "birthright", "admin", "aggregation"]

COLUMNS: tuple[str, ...] = (
    "employee_id", "identity_name", "identity_state", "department", "manager_employee_id",
    "manager_name", "application", "account", "account_native_id", "account_status",
    "entitlement", "entitlement_native_id", "how_held", "source", "request_number",
    "request_line_number", "birthright_rule", "reason", "approvers", "granted_by",
    "granted_at", "held_since", "expires_at", "last_certified_at", "last_certified_by",
    "risk", "privileged", "assignment_id",
)


class EntitlementFilters(ReportParams):
    """Filters of the entitlement report (all optional, combined with AND)."""

    application: str | None = None
    entitlement: str | None = None
    department: str | None = None
    manager: str | None = None
    identity: str | None = None
    min_risk: Risk | None = None
    privileged: bool | None = None
    source: Source | None = None


@dataclass(frozen=True)
class _Resolved:
    """The filters with the names they give turned into ids (unknown names: 422)."""

    application_id: uuid.UUID | None
    entitlement_ids: list[uuid.UUID] | None
    manager_id: uuid.UUID | None
    identity_id: uuid.UUID | None


def _resolve(session: Session, f: EntitlementFilters) -> _Resolved:
    return _Resolved(
        application_id=(common.application_id(session, f.application)
                        if f.application is not None else None),
        entitlement_ids=(common.entitlement_ids(session, f.entitlement)
                         if f.entitlement is not None else None),
        manager_id=(common.identity_id(session, f.manager, "manager", "manager")
                    if f.manager is not None else None),
        identity_id=(common.identity_id(session, f.identity, "identity")
                     if f.identity is not None else None),
    )


def _later(a: Any, b: Any) -> Any:
    """The later of two instants, either of which may be NULL (then the other)."""
    return case((b.is_(None), a), (a.is_(None), b), (b > a, b), else_=a)


def _earlier(a: Any, b: Any) -> Any:
    """The earlier of two planned ends, NULL meaning never."""
    return case((b.is_(None), a), (a.is_(None), b), (b < a, b), else_=a)


def role_closure(at: datetime) -> CTE:
    """Every role each role reaches at ``at`` (itself included), with the path's text,
    the latest start and the earliest planned end of the inclusion links on the path."""
    no_instant = cast(null(), UTCDateTime())
    anchor: Any = select(Role.id.label("root_id"), Role.id.label("role_id"),
                    cast(Role.name, Text).label("path"), no_instant.label("since"),
                    no_instant.label("until"), literal_column("0").label("depth"))
    closure = anchor.cte("role_closure", recursive=True)
    child = aliased(Role)
    step = (
        select(closure.c.root_id, RoleInclusion.child_role_id,
               closure.c.path + literal(" > ") + child.name,
               _later(closure.c.since, RoleInclusion.valid_from),
               _earlier(closure.c.until, RoleInclusion.valid_until),
               closure.c.depth + 1)
        .join(RoleInclusion, RoleInclusion.parent_role_id == closure.c.role_id)
        .join(child, child.id == RoleInclusion.child_role_id)
        .where(common.valid_at(RoleInclusion.valid_from, RoleInclusion.valid_until, at),
               closure.c.depth < MAX_DEPTH)
    )
    return closure.union_all(step)


def role_entitlements(at: datetime, entitlement_ids: list[uuid.UUID] | None = None,
                      application_id: uuid.UUID | None = None) -> CTE:
    """Each role's entitlements at ``at`` through every path: (root_id, entitlement_id,
    how, since, until)."""
    closure = role_closure(at)
    stmt = (
        select(closure.c.root_id, RoleEntitlement.entitlement_id,
               (literal("role: ") + closure.c.path).label("how"),
               _later(closure.c.since, RoleEntitlement.valid_from).label("since"),
               _earlier(closure.c.until, RoleEntitlement.valid_until).label("until"))
        .join(RoleEntitlement, RoleEntitlement.role_id == closure.c.role_id)
        .where(common.valid_at(RoleEntitlement.valid_from, RoleEntitlement.valid_until, at))
    )
    if entitlement_ids is not None:
        stmt = stmt.where(RoleEntitlement.entitlement_id.in_(entitlement_ids))
    if application_id is not None:
        stmt = stmt.join(Entitlement, Entitlement.id == RoleEntitlement.entitlement_id).where(
            Entitlement.application_id == application_id)
    return stmt.cte("role_entitlement_paths")


def approvers_by_line(session: Session, at: datetime) -> CTE:
    """Per request line, who approved it (by ``at``), in decision order, as one text."""
    approver, principal = aliased(Identity), aliased(Identity)
    label = approver.display_name + " (" + approver.employee_id + ")"
    label = case((principal.id.is_(None), label),
                 else_=label + " for " + principal.display_name + " ("
                 + principal.employee_id + ")")
    decided = (
        select(ApprovalStep.line_id.label("line_id"), label.label("label"),
               Approval.decided_at.label("decided_at"), Approval.id.label("approval_id"))
        .join(ApprovalStep, ApprovalStep.id == Approval.step_id)
        .join(approver, approver.id == Approval.approver_id)
        .outerjoin(principal, principal.id == Approval.on_behalf_of_id)
        .where(Approval.decision == "approve", Approval.decided_at <= at)
    )
    if common.dialect(session) != "postgresql":  # group_concat follows the rows' order
        decided = decided.order_by(ApprovalStep.line_id, Approval.decided_at, Approval.id)
    rows = decided.subquery("decided")
    return (select(rows.c.line_id,
                   common.string_agg(session, rows.c.label,
                                     (rows.c.decided_at, rows.c.approval_id)).label("names"))
            .group_by(rows.c.line_id).cte("line_approvers"))


def in_force(at: datetime) -> Any:
    """Assignments in force at ``at``: started, not yet at their end, not revoked by then."""
    return and_(common.valid_at(Assignment.valid_from, Assignment.valid_until, at),
                or_(Assignment.revoked_at.is_(None), Assignment.revoked_at > at))


def grants_select(session: Session, filters: EntitlementFilters, *, at: datetime,
                  with_ended_at: datetime | None = None) -> Select[Any]:
    """The report's statement at ``at`` (columns :data:`COLUMNS`, ``ended_at`` appended
    when ``with_ended_at`` gives the instant up to which ends are known: now)."""
    resolved = _resolve(session, filters)
    paths = role_entitlements(at, resolved.entitlement_ids, resolved.application_id)
    approvers = approvers_by_line(session, at)
    manager = aliased(Identity)
    entitlement_id = case((Assignment.entitlement_id.is_not(None), Assignment.entitlement_id),
                          else_=paths.c.entitlement_id)
    how = case((Assignment.entitlement_id.is_not(None), literal("direct")), else_=paths.c.how)
    held_since = _later(Assignment.valid_from, paths.c.since)
    certified = Assignment.last_certified_at <= at
    columns: list[Any] = [
        Identity.employee_id.label("employee_id"),
        Identity.display_name.label("identity_name"),
        Identity.lifecycle_state.label("identity_state"),
        Identity.department.label("department"),
        manager.employee_id.label("manager_employee_id"),
        manager.display_name.label("manager_name"),
        Application.name.label("application"),
        Account.username.label("account"),
        Account.native_id.label("account_native_id"),
        Account.status.label("account_status"),
        Entitlement.name.label("entitlement"),
        Entitlement.native_id.label("entitlement_native_id"),
        how.label("how_held"),
        Assignment.source.label("source"),
        AccessRequest.number.label("request_number"),
        RequestLine.number.label("request_line_number"),
        BirthrightRule.name.label("birthright_rule"),
        Assignment.reason.label("reason"),
        approvers.c.names.label("approvers"),
        Assignment.granted_by.label("granted_by"),
        Assignment.valid_from.label("granted_at"),
        held_since.label("held_since"),
        Assignment.valid_until.label("expires_at"),
        case((certified, Assignment.last_certified_at)).label("last_certified_at"),
        case((certified, Assignment.last_certified_by)).label("last_certified_by"),
        Entitlement.risk.label("risk"),
        Entitlement.privileged.label("privileged"),
        Assignment.id.label("assignment_id"),
    ]
    if with_ended_at is not None:
        end = _earlier(_earlier(Assignment.revoked_at, Assignment.valid_until), paths.c.until)
        columns.append(case((end <= with_ended_at, end)).label("ended_at"))
    stmt = (
        select(*columns)
        .select_from(Assignment)
        .join(Identity, Identity.id == Assignment.identity_id)
        .outerjoin(paths, paths.c.root_id == Assignment.role_id)
        .join(Entitlement, Entitlement.id == entitlement_id)
        .join(Application, Application.id == Entitlement.application_id)
        .outerjoin(manager, manager.id == Identity.manager_id)
        .outerjoin(Account, and_(Account.identity_id == Assignment.identity_id,
                                 Account.application_id == Entitlement.application_id,
                                 Account.account_type == "primary"))
        .outerjoin(RequestLine, RequestLine.id == Assignment.request_line_id)
        .outerjoin(AccessRequest, AccessRequest.id == RequestLine.request_id)
        .outerjoin(BirthrightRule, BirthrightRule.id == Assignment.birthright_rule_id)
        .outerjoin(approvers, approvers.c.line_id == Assignment.request_line_id)
        .where(in_force(at))
    )
    stmt = _filtered(stmt, filters, resolved)
    return stmt.order_by(Identity.employee_id, Application.name, Entitlement.name, how,
                         Assignment.id)


def _filtered(stmt: Select[Any], f: EntitlementFilters, r: _Resolved) -> Select[Any]:
    if r.application_id is not None:
        stmt = stmt.where(Entitlement.application_id == r.application_id)
    if r.entitlement_ids is not None:
        stmt = stmt.where(Entitlement.id.in_(r.entitlement_ids))
    if f.department is not None:
        stmt = stmt.where(Identity.department == f.department)
    if r.manager_id is not None:
        stmt = stmt.where(Identity.manager_id == r.manager_id)
    if r.identity_id is not None:
        stmt = stmt.where(Assignment.identity_id == r.identity_id)
    if f.min_risk is not None:
        stmt = stmt.where(Entitlement.risk.in_(common.risks_at_least(f.min_risk)))
    if f.privileged is not None:
        stmt = stmt.where(Entitlement.privileged == f.privileged)
    if f.source is not None:
        stmt = stmt.where(Assignment.source == f.source)
    return stmt


def build(session: Session, params: EntitlementFilters, clock: Clock) -> ReportQuery:
    """Every grant in force now."""
    return ReportQuery(columns=COLUMNS, select=grants_select(session, params, at=clock.now()))


REPORT = ReportDef(
    name="entitlements",
    title="Entitlements held",
    description="One row per identity, entitlement and way it is held (direct, or through "
                "which roles), with account, source, approvers, dates, last certification, "
                "risk and privileged flag.",
    params=EntitlementFilters,
    build=common.typed_build(EntitlementFilters, build),
    columns=COLUMNS,
)
