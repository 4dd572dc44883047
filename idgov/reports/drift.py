"""Reconciliation reports: the drift each application's target shows, and orphan accounts.

**drift**: one row per drift item found by the *latest succeeded reconciliation run* of each
application (earlier runs are history: what they found was fixed or is found again).
``kind`` is one of ``orphan_account``, ``unassigned_membership`` (a membership nobody
assigned), ``missing_grant`` (assigned, not on the target), ``missing_account``,
``disabled_account_of_active_identity``, ``enabled_account_of_inactive_identity``. Columns:
``application``, ``run_id``, ``run_started_at``, ``run_finished_at``, ``kind``,
``account_native_id``, ``account``, ``employee_id``, ``identity_name``, ``entitlement``,
``entitlement_native_id``, ``detail`` (JSON text), ``remediation_state`` (the state of the
operation queued to fix it, if remediation ran). Filters: ``application``, ``kind``.

**orphan_accounts**: every account the service knows that no identity holds and nobody
owns (not deleted on the target), as it stands now: ``application``, ``account_native_id``,
``account``, ``account_type``, ``status``, ``first_seen_at``. Filter: ``application``.
"""

from __future__ import annotations

from typing import Any, Literal

from sqlalchemy import String, cast, func, select
from sqlalchemy.orm import Session

from idgov.clock import Clock
from idgov.models.application import Account, Application
from idgov.models.catalog import Entitlement
from idgov.models.identity import Identity
from idgov.models.provisioning import DriftItem, ProvisioningOperation, ReconciliationRun
from idgov.reports import common
from idgov.reports.common import ReportParams
from idgov.reports.registry import ReportDef, ReportQuery

DRIFT_COLUMNS: tuple[str, ...] = (
    "application", "run_id", "run_started_at", "run_finished_at", "kind",
    "account_native_id", "account", "employee_id", "identity_name", "entitlement",
    "entitlement_native_id", "detail", "remediation_state",
)
ORPHAN_COLUMNS: tuple[str, ...] = (
    "application", "account_native_id", "account", "account_type", "status",
    "first_seen_at",
)
DriftKind = Literal["orphan_account", "unassigned_membership", "missing_grant",
                    "missing_account", "disabled_account_of_active_identity",
                    "enabled_account_of_inactive_identity"]


class DriftParams(ReportParams):
    application: str | None = None
    kind: DriftKind | None = None


class OrphanParams(ReportParams):
    application: str | None = None


def build_drift(session: Session, params: DriftParams, clock: Clock) -> ReportQuery:
    """The drift items of each application's latest succeeded reconciliation run."""
    run = ReconciliationRun
    ranked = (
        select(run.id, func.row_number().over(
            partition_by=run.application_id,
            order_by=(run.started_at.desc(), run.id.desc())).label("n"))
        .where(run.kind == "reconciliation", run.state == "succeeded")
        .subquery("ranked_runs"))
    latest = select(ranked.c.id).where(ranked.c.n == 1)
    stmt: Any = (
        select(Application.name.label("application"), run.id.label("run_id"),
               run.started_at.label("run_started_at"),
               run.finished_at.label("run_finished_at"), DriftItem.kind.label("kind"),
               DriftItem.account_native_id.label("account_native_id"),
               Account.username.label("account"), Identity.employee_id.label("employee_id"),
               Identity.display_name.label("identity_name"),
               Entitlement.name.label("entitlement"),
               DriftItem.entitlement_native_id.label("entitlement_native_id"),
               cast(DriftItem.detail, String).label("detail"),
               ProvisioningOperation.state.label("remediation_state"))
        .select_from(DriftItem)
        .join(run, run.id == DriftItem.run_id)
        .join(Application, Application.id == run.application_id)
        .outerjoin(Account, Account.id == DriftItem.account_id)
        .outerjoin(Identity, Identity.id == DriftItem.identity_id)
        .outerjoin(Entitlement, Entitlement.id == DriftItem.entitlement_id)
        .outerjoin(ProvisioningOperation,
                   ProvisioningOperation.id == DriftItem.remediation_operation_id)
        .where(DriftItem.run_id.in_(latest))
        .order_by(Application.name, DriftItem.kind, DriftItem.account_native_id,
                  DriftItem.entitlement_native_id, DriftItem.id)
    )
    if params.application is not None:
        stmt = stmt.where(run.application_id == common.application_id(session,
                                                                      params.application))
    if params.kind is not None:
        stmt = stmt.where(DriftItem.kind == params.kind)
    return ReportQuery(columns=DRIFT_COLUMNS, select=stmt)


def build_orphans(session: Session, params: OrphanParams, clock: Clock) -> ReportQuery:
    """Accounts with neither an identity nor an owner, not deleted."""
    stmt: Any = (
        select(Application.name.label("application"),
               Account.native_id.label("account_native_id"), Account.username.label("account"),
               Account.account_type.label("account_type"), Account.status.label("status"),
               Account.created_at.label("first_seen_at"))
        .join(Application, Application.id == Account.application_id)
        .where(Account.identity_id.is_(None), Account.owner_id.is_(None),
               Account.status != "deleted")
        .order_by(Application.name, Account.native_id)
    )
    if params.application is not None:
        stmt = stmt.where(Account.application_id == common.application_id(
            session, params.application))
    return ReportQuery(columns=ORPHAN_COLUMNS, select=stmt)


DRIFT = ReportDef(
    name="drift",
    title="Drift from the desired state",
    description="What the latest succeeded reconciliation of each application found: orphan "
                "accounts, memberships nobody assigned, grants that never landed, accounts "
                "in the wrong state.",
    params=DriftParams,
    build=common.typed_build(DriftParams, build_drift),
    columns=DRIFT_COLUMNS,
)
ORPHANS = ReportDef(
    name="orphan_accounts",
    title="Orphan accounts",
    description="Accounts in the targets that no identity holds and nobody owns.",
    params=OrphanParams,
    build=common.typed_build(OrphanParams, build_orphans),
    columns=ORPHAN_COLUMNS,
)
