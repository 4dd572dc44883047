"""A campaign's evidence for auditors: its scope, its reviewers, every item with its decision
(who, when, comment) and what became of it (remediation), as CSV or JSON.

Both formats are produced as a stream of text chunks, reading the items in batches in a
transaction of their own (the HTTP response outlives the request's unit of work), so a
campaign of a million items never sits in memory. The CSV holds one row per item; the
campaign's scope and reviewers are in the JSON (``campaign``, ``reviewers``, ``items``).
Items of a role composition campaign review a link, not a person's access: their person
columns are empty, ``subject`` is ``role_composition``, ``role_name`` / ``role_id`` name the
role whose composition it is, ``access_type`` / ``access_name`` what the link includes (an
entitlement, or the included role: ``included_role_id``), ``link_id`` the link; ``remediation``
follows the link's end (certification.verification).
Free text that a spreadsheet would run as a formula (a cell starting with ``=``, ``+``,
``-``, ``@``, tab or carriage return) is prefixed with ``'`` in the CSV.
"""

from __future__ import annotations

import csv
import io
import json
import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session, aliased, sessionmaker

from certification.models import Campaign, ReviewerSignoff, ReviewItem
from certification.review_repository import Included
from idgov.db.repository import get_or_404
from idgov.db.session import unit_of_work
from idgov.models.application import Application
from idgov.models.catalog import Entitlement, Role, RoleInclusion
from idgov.models.identity import Group, Identity

BATCH = 1000
COLUMNS = ("item_id", "campaign_id", "campaign_name", "identity_id", "employee_id",
           "identity_name", "access_type", "access_name", "application", "role_id",
           "entitlement_id", "assignment_id", "source", "risk", "privileged", "sod_conflict",
           "reviewer_id", "reviewer_name", "reviewer_group", "original_reviewer_id",
           "decision", "decided_by", "decided_at", "comment", "remediation",
           "remediated_at", "remediation_detail", "reviewer_signed_off_at", "subject",
           "role_name", "included_role_id", "link_id")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_TEXT = frozenset({"identity_name", "access_name", "application", "reviewer_name",
                   "reviewer_group", "decided_by", "comment", "campaign_name",
                   "remediation_detail", "role_name"})


def _when(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat().replace("+00:00", "Z")


def report_campaign(session: Session, *, campaign_id: uuid.UUID) -> Campaign:
    """The campaign to report on; NotFound for an unknown id."""
    return get_or_404(session, Campaign, campaign_id, what="campaign")


def campaign_summary(session: Session, *, campaign_id: uuid.UUID) -> dict[str, Any]:
    """The campaign's identity, scope, timings, policy and counts."""
    c = report_campaign(session, campaign_id=campaign_id)
    return {"id": str(c.id), "name": c.name, "description": c.description, "kind": c.kind,
            "state": c.state, "scope": c.scope, "fallbacks": c.fallbacks,
            "fallback_group_id": str(c.fallback_group_id) if c.fallback_group_id else None,
            "starts_at": _when(c.starts_at), "deadline_at": _when(c.deadline_at),
            "reminder_days": c.reminder_days, "escalate_after_days": c.escalate_after_days,
            "deadline_action": c.deadline_action, "trigger": c.trigger,
            "trigger_ref": c.trigger_ref, "created_by": c.created_by,
            "generated_at": _when(c.generated_at), "closed_at": _when(c.closed_at),
            "counts": c.counts}


def reviewers(session: Session, *, campaign_id: uuid.UUID) -> list[dict[str, Any]]:
    """Each reviewer of the campaign with their items' decisions and their sign-off."""
    def count(decision: str) -> Any:
        return func.sum(case((ReviewItem.decision == decision, 1), else_=0))

    stmt = (select(ReviewItem.reviewer_id, Identity.employee_id, Identity.display_name,
                   func.count(), count("certify"), count("revoke"), count("pending"),
                   ReviewerSignoff.signed_off_at)
            .join(Identity, Identity.id == ReviewItem.reviewer_id)
            .outerjoin(ReviewerSignoff, (ReviewerSignoff.campaign_id == campaign_id)
                       & (ReviewerSignoff.reviewer_id == ReviewItem.reviewer_id))
            .where(ReviewItem.campaign_id == campaign_id)
            .group_by(ReviewItem.reviewer_id, Identity.employee_id, Identity.display_name,
                      ReviewerSignoff.signed_off_at)
            .order_by(Identity.display_name, ReviewItem.reviewer_id))
    return [{"reviewer_id": str(r), "employee_id": e, "name": n, "items": int(t),
             "certified": int(c or 0), "revoked": int(v or 0), "pending": int(p or 0),
             "signed_off_at": _when(s)}
            for r, e, n, t, c, v, p, s in session.execute(stmt)]


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def report_rows(session: Session, *, campaign_id: uuid.UUID) -> Iterator[dict[str, Any]]:
    """Every item of the campaign, in a stable order (by person, or by role for a
    composition campaign), as a flat dict (keys :data:`COLUMNS`), read in batches."""
    campaign = report_campaign(session, campaign_id=campaign_id)
    person, reviewer = aliased(Identity), aliased(Identity)
    order = ((Role.name, ReviewItem.id) if campaign.kind == "composition"
             else (person.employee_id, ReviewItem.id))
    stmt = (select(ReviewItem, person.employee_id, person.display_name, Role.name,
                   Entitlement.name, Application.name, reviewer.display_name, Group.name,
                   ReviewerSignoff.signed_off_at, Included.id, Included.name)
            .outerjoin(person, person.id == ReviewItem.identity_id)
            .outerjoin(Role, Role.id == ReviewItem.role_id)
            .outerjoin(Entitlement, Entitlement.id == ReviewItem.entitlement_id)
            .outerjoin(RoleInclusion, RoleInclusion.id == ReviewItem.role_inclusion_id)
            .outerjoin(Included, Included.id == RoleInclusion.child_role_id)
            .outerjoin(Application, Application.id == ReviewItem.application_id)
            .outerjoin(reviewer, reviewer.id == ReviewItem.reviewer_id)
            .outerjoin(Group, Group.id == ReviewItem.reviewer_group_id)
            .outerjoin(ReviewerSignoff, (ReviewerSignoff.campaign_id == campaign_id)
                       & (ReviewerSignoff.reviewer_id == ReviewItem.reviewer_id))
            .where(ReviewItem.campaign_id == campaign_id)
            .order_by(*order)
            .execution_options(yield_per=BATCH))
    for row in session.execute(stmt):
        item: ReviewItem = row[0]
        detail = (item.context or {}).get("remediation")
        link = item.assignment_id is None
        if link:
            access_type = "entitlement" if item.entitlement_id else "role"
            access_name = row[4] if item.entitlement_id else row[10]
        else:
            access_type = "role" if item.role_id else "entitlement"
            access_name = row[3] if item.role_id else row[4]
        yield {
            "item_id": str(item.id), "campaign_id": str(campaign.id),
            "campaign_name": campaign.name, "identity_id": _text(item.identity_id),
            "employee_id": row[1], "identity_name": row[2],
            "access_type": access_type, "access_name": access_name, "application": row[5],
            "role_id": _text(item.role_id), "entitlement_id": _text(item.entitlement_id),
            "assignment_id": _text(item.assignment_id), "source": item.source,
            "risk": item.risk, "privileged": item.privileged,
            "sod_conflict": item.sod_conflict,
            "reviewer_id": _text(item.reviewer_id),
            "reviewer_name": row[6], "reviewer_group": row[7],
            "original_reviewer_id": _text(item.original_reviewer_id),
            "decision": item.decision, "decided_by": item.decided_by,
            "decided_at": _when(item.decided_at), "comment": item.comment,
            "remediation": item.remediation, "remediated_at": _when(item.remediated_at),
            "remediation_detail": detail or None,
            "reviewer_signed_off_at": _when(row[8]),
            "subject": "role_composition" if link else "assignment",
            "role_name": row[3] if link else None,
            "included_role_id": _text(row[9]) if link else None,
            "link_id": _text(item.role_entitlement_id or item.role_inclusion_id),
        }


def _cell(key: str, value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        value = json.dumps(value, sort_keys=True, default=str)
    if key in _TEXT and isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def csv_chunks(session_factory: sessionmaker[Session], *,
               campaign_id: uuid.UUID) -> Iterator[str]:
    """The campaign's items as CSV (header first), a batch of rows per chunk."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    with unit_of_work(session_factory) as session:
        for n, row in enumerate(report_rows(session, campaign_id=campaign_id), start=1):
            writer.writerow([_cell(k, row[k]) for k in COLUMNS])
            if n % BATCH == 0:
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
    yield buffer.getvalue()


def json_chunks(session_factory: sessionmaker[Session], *,
                campaign_id: uuid.UUID) -> Iterator[str]:
    """The report as one JSON document ``{campaign, reviewers, items}``, streamed."""
    with unit_of_work(session_factory) as session:
        head = {"campaign": campaign_summary(session, campaign_id=campaign_id),
                "reviewers": reviewers(session, campaign_id=campaign_id)}
        yield json.dumps(head, default=str)[:-1] + ', "items": ['
        parts: list[str] = []
        for n, row in enumerate(report_rows(session, campaign_id=campaign_id)):
            parts.append(("," if n else "") + json.dumps(row, default=str))
            if len(parts) >= BATCH:
                yield "".join(parts)
                parts = []
        yield "".join(parts) + "]}"
