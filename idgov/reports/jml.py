"""The JML report: joiners, movers and leavers of a period, and how long each took to
provision or deprovision.

One row per HR change applied by a feed (CSV, JSON push or SCIM): ``category`` is
``joiner`` (kinds ``joiner`` and ``rehire``), ``mover`` (``mover``, ``conversion``) or
``leaver``; ``kind`` is the feed's own word. A change belongs to the period
[``from``, ``to``) when its ``effective_at`` does:

- joiner: the hire instant when the joiner was a prehire (the ``activate`` lifecycle event
  the change scheduled), else when the feed applied the change;
- mover: when the feed applied the change;
- leaver: when the termination took effect as HR asked (the ``terminate`` lifecycle event
  the change scheduled), else, for an immediate or past-due termination, when the feed
  applied it.

**Which provisioning operations were done for a change.** Nothing on an operation names
the HR change (its cause is the assignment it carries out, or ``lifecycle``), so the link
is made through the transaction that carried the change out: the operations *of the same
identity* recorded while it ran, with causes ``assignment``, ``lifecycle`` or
``identity_change``:

- joiner, mover: recorded between the start of the feed run and the instant the run
  stamped the change applied (the run applies every change, then stamps them);
- leaver: recorded between the start of the termination (the ``terminate`` event's run,
  or the feed run for an immediate one) and the creation of the ``delete_accounts`` event
  the termination schedules as its last step (it carries the change's id).

Operations another transaction records for the same person inside that window (a request
approved at the same moment) would be counted too; reconciliation fixes, catalog changes
and expiries never are (their causes are excluded). A mover's old birthright access ends
after the source's grace period, by expiry: that is policy, not provisioning time, and is
not counted.

Columns: ``category``, ``kind``, ``employee_id``, ``identity_name``, ``department``
(current), ``hr_source``, ``feed_run_id``, ``change_id``, ``changed_fields``,
``applied_at``, ``effective_at``, ``operations``, ``succeeded``, ``failed``, ``open``,
``last_operation_done_at`` (the last succeeded operation's completion), ``status``
(``scheduled``: the termination has not taken effect yet; ``withdrawn``: HR withdrew it;
``nothing_to_provision``; ``in_progress``; ``failed``; ``cancelled``: every operation was
cancelled; ``completed``) and ``duration_seconds`` (``effective_at`` to
``last_operation_done_at``, for a completed change).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import AwareDatetime, Field, model_validator
from sqlalchemy import String, and_, case, cast, func, select
from sqlalchemy.orm import Session

from idgov.clock import Clock
from idgov.models.hr import FeedChange, FeedRun, HrSource, LifecycleEvent
from idgov.models.identity import Identity
from idgov.models.provisioning import ProvisioningOperation
from idgov.reports import common
from idgov.reports.common import ReportParams
from idgov.reports.registry import ReportDef, ReportQuery

COLUMNS: tuple[str, ...] = (
    "category", "kind", "employee_id", "identity_name", "department", "hr_source",
    "feed_run_id", "change_id", "changed_fields", "applied_at", "effective_at", "operations",
    "succeeded", "failed", "open", "last_operation_done_at", "status", "duration_seconds",
)
KINDS = {"joiner": ("joiner", "rehire"), "mover": ("mover", "conversion"),
         "leaver": ("leaver",)}
# The causes of the operations a JML change itself records.
CAUSES = ("assignment", "lifecycle", "identity_change")
OPEN_STATES = ("pending", "running", "retry_scheduled")


class JmlParams(ReportParams):
    """The period [from, to) and optional narrowing."""

    from_: AwareDatetime = Field(alias="from")
    to: AwareDatetime
    category: Literal["joiner", "mover", "leaver"] | None = None
    department: str | None = None

    @model_validator(mode="after")
    def _ordered(self) -> JmlParams:
        if self.to <= self.from_:
            raise ValueError("'to' must be later than 'from'")
        return self


def _event(column: Any, kind: str, *, state: str | None = None) -> Any:
    """The first ``column`` of the change's lifecycle events of ``kind``."""
    stmt = select(func.min(column)).where(LifecycleEvent.change_id == FeedChange.id,
                                          LifecycleEvent.kind == kind)
    stmt = stmt.where(LifecycleEvent.state == state if state is not None
                      else LifecycleEvent.state != "cancelled")
    return stmt.scalar_subquery()


def _changes(params: JmlParams) -> Any:
    """Each change of the period with the instant it took effect and its window."""
    category = case((FeedChange.kind.in_(KINDS["joiner"]), "joiner"),
                    (FeedChange.kind.in_(KINDS["mover"]), "mover"), else_="leaver")
    activation = _event(LifecycleEvent.due_at, "activate")
    termination_due = _event(LifecycleEvent.due_at, "terminate")
    termination_ran = _event(LifecycleEvent.done_at, "terminate", state="done")
    termination_waits = _event(LifecycleEvent.due_at, "terminate", state="scheduled")
    deletion_made = _event(LifecycleEvent.created_at, "delete_accounts")
    leaver = FeedChange.kind == "leaver"
    effective = case((leaver, func.coalesce(termination_due, FeedChange.applied_at)),
                     (FeedChange.kind.in_(KINDS["joiner"]),
                      func.coalesce(activation, FeedChange.applied_at)),
                     else_=FeedChange.applied_at)
    window_from = case((leaver, func.coalesce(termination_ran, FeedRun.started_at)),
                       else_=FeedRun.started_at)
    window_to = case((leaver, deletion_made), else_=FeedChange.applied_at)
    wanted = [k for c, kinds in KINDS.items() if params.category in (None, c) for k in kinds]
    stmt = (
        select(category.label("category"), FeedChange.kind.label("kind"),
               FeedChange.employee_id.label("employee_id"),
               FeedChange.identity_id.label("identity_id"),
               HrSource.name.label("hr_source"), FeedChange.run_id.label("feed_run_id"),
               FeedChange.id.label("change_id"),
               cast(FeedChange.changed, String).label("changed_fields"),
               FeedChange.applied_at.label("applied_at"), effective.label("effective_at"),
               window_from.label("window_from"), window_to.label("window_to"),
               and_(leaver, termination_waits.is_not(None)).label("waiting"))
        .join(FeedRun, FeedRun.id == FeedChange.run_id)
        .join(HrSource, HrSource.id == FeedRun.source_id)
        .where(FeedChange.state == "applied", FeedChange.kind.in_(wanted))
    )
    return stmt.subquery("jml_changes")


def build(session: Session, params: JmlParams, clock: Clock) -> ReportQuery:
    """The JML changes effective in [from, to) with their provisioning times."""
    base = _changes(params)
    op = ProvisioningOperation
    count = func.count(op.id)
    succeeded = func.coalesce(func.sum(case((op.state == "succeeded", 1), else_=0)), 0)
    failed = func.coalesce(func.sum(case((op.state == "failed", 1), else_=0)), 0)
    still_open = func.coalesce(func.sum(case((op.state.in_(OPEN_STATES), 1), else_=0)), 0)
    done_at = func.max(case((op.state == "succeeded", op.completed_at)))
    status = case(
        (base.c.waiting, "scheduled"),
        (base.c.window_to.is_(None), "withdrawn"),
        (count == 0, "nothing_to_provision"),
        (still_open > 0, "in_progress"),
        (failed > 0, "failed"),
        (succeeded == 0, "cancelled"),
        else_="completed")
    duration = case((status == "completed",
                     common.seconds_between(session, done_at, base.c.effective_at)))
    stmt = (
        select(base.c.category, base.c.kind, base.c.employee_id,
               Identity.display_name.label("identity_name"),
               Identity.department.label("department"), base.c.hr_source,
               base.c.feed_run_id, base.c.change_id, base.c.changed_fields, base.c.applied_at,
               base.c.effective_at, count.label("operations"), succeeded.label("succeeded"),
               failed.label("failed"), still_open.label("open"),
               done_at.label("last_operation_done_at"), status.label("status"),
               duration.label("duration_seconds"))
        .select_from(base)
        .outerjoin(Identity, Identity.id == base.c.identity_id)
        .outerjoin(op, and_(op.identity_id == base.c.identity_id,
                            op.created_at >= base.c.window_from,
                            op.created_at <= base.c.window_to,
                            op.cause.in_(CAUSES)))
        .where(base.c.effective_at >= params.from_, base.c.effective_at < params.to)
        .group_by(base.c.category, base.c.kind, base.c.employee_id, Identity.display_name,
                  Identity.department, base.c.hr_source, base.c.feed_run_id,
                  base.c.change_id, base.c.changed_fields, base.c.applied_at,
                  base.c.effective_at, base.c.window_to, base.c.waiting)
        .order_by(base.c.effective_at, base.c.employee_id, base.c.change_id)
    )
    if params.department is not None:
        stmt = stmt.where(Identity.department == params.department)
    return ReportQuery(columns=COLUMNS, select=stmt)


REPORT = ReportDef(
    name="jml",
    title="Joiners, movers and leavers",
    description="The HR changes effective in a period (`from`, `to`) and how long each took "
                "to provision or deprovision, from the change (or the lifecycle event it "
                "scheduled) to the last provisioning operation done for it.",
    params=JmlParams,
    build=common.typed_build(JmlParams, build),
    columns=COLUMNS,
)
