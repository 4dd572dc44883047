"""The entitlement report as of a past instant: "who could approve vendor payments on
1 March at 09:00?" answered exactly from the kept history.

Parameters: ``as_of`` (required, ISO 8601 *with* its offset: a naive or malformed instant is
refused) and the filters of :mod:`idgov.reports.entitlements`. Refused as well (422): an
instant before the service existed (earlier than its first audit event, or with no audit
trail yet, than its earliest assignment) and an instant in the future.

What is reconstructed, and what is not:

- **historical, exact**: which assignments were in force at ``as_of`` (started at or before
  it, not yet at their ``valid_until``, not revoked by then: assignments are end-dated,
  never deleted); which role inclusion and role -> entitlement links were in force then
  (likewise end-dated), hence every path of ``how_held`` and its ``held_since`` as they
  stood; who had approved the request line by then.
- **as recorded now**: ``expires_at`` is the assignment's end as the row holds it today (a
  mover's end scheduled after ``as_of`` shows already).
- **historical, as far as the row knows**: ``last_certified_at``/``_by`` show the
  assignment's last certification if it happened at or before ``as_of``; a later
  certification overwrites the column, so an earlier one is then not shown (the audit
  trail keeps every ``assignment.certify`` event).
- **current values**: everything describing the people and the catalog: employee id,
  name, lifecycle state, department and manager, the entitlement's name, risk and
  privileged flag, the account. They are not end-dated; they are not reconstructed from the
  audit trail, so a ``department`` or ``manager`` filter selects on today's values.

One column more than the current report: ``ended_at``, when the grant stopped being in force
after ``as_of`` (revocation, expiry or the end of a composition link on its path; empty when
it still is).
"""

from __future__ import annotations

from datetime import datetime

from pydantic import AwareDatetime
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from idgov.clock import Clock
from idgov.errors import FieldError, InvalidInput
from idgov.models.assignment import Assignment
from idgov.models.audit import AuditEvent
from idgov.reports import common
from idgov.reports.entitlements import COLUMNS as CURRENT_COLUMNS
from idgov.reports.entitlements import EntitlementFilters, grants_select
from idgov.reports.registry import ReportDef, ReportQuery

COLUMNS: tuple[str, ...] = (*CURRENT_COLUMNS, "ended_at")


class PointInTimeParams(EntitlementFilters):
    """``as_of`` and the entitlement report's filters."""

    as_of: AwareDatetime


def service_start(session: Session) -> datetime | None:
    """The first instant the service knows of: its first audit event, or without any, its
    earliest assignment's creation or start; None for an empty database."""
    first = session.scalar(select(func.min(AuditEvent.occurred_at)))
    if first is not None:
        return first
    created, started = session.execute(
        select(func.min(Assignment.created_at), func.min(Assignment.valid_from))).one()
    known = [at for at in (created, started) if at is not None]
    return min(known, default=None)


def check_as_of(session: Session, as_of: datetime, clock: Clock) -> None:
    """InvalidInput unless ``as_of`` lies between the service's start and now."""
    now = clock.now()
    if as_of > now:
        raise InvalidInput(
            f"as_of {as_of.isoformat()} is in the future: a point-in-time report looks back",
            errors=[FieldError("as_of", f"must not be later than now ({now.isoformat()})")])
    start = service_start(session)
    if start is not None and as_of < start:
        raise InvalidInput(
            f"as_of {as_of.isoformat()} is before the service existed: its history starts "
            f"at {start.isoformat()}",
            errors=[FieldError("as_of", f"must not be earlier than {start.isoformat()}")])


def build(session: Session, params: PointInTimeParams, clock: Clock) -> ReportQuery:
    """Every grant in force at ``as_of``."""
    check_as_of(session, params.as_of, clock)
    filters = EntitlementFilters.model_validate(params.model_dump(exclude={"as_of"}))
    return ReportQuery(columns=COLUMNS,
                       select=grants_select(session, filters, at=params.as_of,
                                            with_ended_at=clock.now()))


REPORT = ReportDef(
    name="entitlements_as_of",
    title="Entitlements held at a past instant",
    description="The entitlement report as of `as_of` (ISO 8601 with offset), rebuilt from "
                "the end-dated history of assignments and role composition; people's "
                "attributes are today's.",
    params=PointInTimeParams,
    build=common.typed_build(PointInTimeParams, build),
    columns=COLUMNS,
)
