"""Micro-certifications triggered by events: a mover's flagged access.

:func:`open_micro_campaigns` turns open review flags (``idgov.models.hr.ReviewFlag``: a
mover's requested access flagged for the new manager by
:func:`idgov.lifecycle.review_flags.flag_requested_access`) that no micro campaign covers yet
into one active ``micro`` campaign per reviewer (trigger ``mover``, ``trigger_ref`` the HR
change of the first flag, else the flag; deadline in :data:`MICRO_DEADLINE`, undecided items
escalated at the deadline), with one review item per flagged assignment
(``context.review_flag_id`` names its flag). A flag is covered when a ``mover`` micro item of
its assignment was created at or after the flag. When the item's decision takes effect
(:mod:`certification.remediation`), the flag is closed ``kept`` or ``revoked``.

Flags without a reviewer (the mover has no manager) are left to administrators under
``/review-flags``; flags whose assignment already ended are skipped. Not done yet: SoD
exceptions reaching their expiry, unused access, access found by aggregation.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import timedelta
from typing import Any

from sqlalchemy import and_, exists, select
from sqlalchemy.orm import Session

from certification.models import Campaign, ReviewItem
from idgov.audit.service import EventSpec, record_many, snapshot
from idgov.clock import Clock
from idgov.db.repository import bulk_insert
from idgov.models.application import RISK_LEVELS
from idgov.models.assignment import Assignment
from idgov.models.catalog import Entitlement, Role
from idgov.models.hr import ReviewFlag
from idgov.models.identity import Identity
from idgov.notifications.service import notify
from idgov.provisioning.repository import role_entitlements
from idgov.types import Actor

MICRO_DEADLINE = timedelta(days=14)
MICRO_REMINDER_DAYS = [3]


def _uncovered_flags(session: Session) -> list[ReviewFlag]:
    covered = exists().where(
        ReviewItem.assignment_id == ReviewFlag.assignment_id,
        ReviewItem.created_at >= ReviewFlag.created_at,
        ReviewItem.campaign_id.in_(select(Campaign.id).where(
            and_(Campaign.kind == "micro", Campaign.trigger == "mover"))))
    return list(session.scalars(select(ReviewFlag).where(
        ReviewFlag.state == "open", ReviewFlag.reviewer_id.is_not(None), ~covered)
        .order_by(ReviewFlag.created_at, ReviewFlag.id)))


def _access(session: Session, assignment: Assignment, now: Any) -> dict[str, Any]:
    """application_id, risk, privileged and a name of what the assignment gives."""
    if assignment.entitlement_id is not None:
        entitlement = session.get(Entitlement, assignment.entitlement_id)
        assert entitlement is not None
        return {"application_id": entitlement.application_id, "risk": entitlement.risk,
                "privileged": entitlement.privileged, "name": f"entitlement {entitlement.name}"}
    role = session.get(Role, assignment.role_id)
    ids = role_entitlements(session, role_id=assignment.role_id, at=now) \
        if assignment.role_id else set()
    rows = list(session.execute(select(Entitlement.application_id, Entitlement.risk,
                                       Entitlement.privileged)
                                .where(Entitlement.id.in_(ids)))) if ids else []
    apps = {a for a, _r, _p in rows}
    risks = [r for _a, r, _p in rows if r in RISK_LEVELS]
    return {"application_id": next(iter(apps)) if len(apps) == 1 else None,
            "risk": max(risks, key=RISK_LEVELS.index) if risks else "low",
            "privileged": any(p for _a, _r, p in rows),
            "name": f"role {role.name}" if role is not None else "a role"}


def _open_one(session: Session, reviewer_id: uuid.UUID, flags: list[ReviewFlag], *,
              actor: Actor, clock: Clock) -> tuple[Campaign, list[dict[str, Any]]] | None:
    now = clock.now()
    rows: list[dict[str, Any]] = []
    names: list[str] = []
    for flag in flags:
        assignment = session.get(Assignment, flag.assignment_id)
        if assignment is None or assignment.revoked_at is not None or (
                assignment.valid_until is not None and assignment.valid_until <= now):
            continue
        access = _access(session, assignment, now)
        names.append(access.pop("name"))
        rows.append({"id": uuid.uuid4(), "assignment_id": assignment.id,
                     "identity_id": assignment.identity_id, "role_id": assignment.role_id,
                     "entitlement_id": assignment.entitlement_id, "source": assignment.source,
                     "sod_conflict": False, "reviewer_id": reviewer_id,
                     "reviewer_group_id": None, "original_reviewer_id": None,
                     "decision": "pending", "decided_at": None, "decided_by": None,
                     "comment": None, "remediation": "none", "remediated_at": None,
                     "context": {"trigger": "mover", "review_flag_id": str(flag.id),
                                 "reason": flag.reason,
                                 "change_id": str(flag.change_id) if flag.change_id else None,
                                 "how_granted": {"source": assignment.source,
                                                 "reason": assignment.reason},
                                 "last_certified_at": (
                                     assignment.last_certified_at.isoformat()
                                     if assignment.last_certified_at else None)},
                     "created_at": now, **access})
    if not rows:
        return None
    reviewer = session.get(Identity, reviewer_id)
    first = flags[0]
    campaign = Campaign(
        name=(f"Review after a move for {reviewer.display_name if reviewer else reviewer_id}"
              f" ({now.date().isoformat()}, {str(first.id)[:8]})")[:200],
        description="Access a mover requested in their old position, for the new manager "
                    "to keep or revoke.",
        kind="micro", state="active",
        scope={"identity_ids": sorted({str(r["identity_id"]) for r in rows}),
               "assignment_ids": [str(r["assignment_id"]) for r in rows]},
        fallbacks=[], starts_at=now, deadline_at=now + MICRO_DEADLINE,
        reminder_days=list(MICRO_REMINDER_DAYS), escalate_after_days=None,
        deadline_action="escalate", trigger="mover",
        trigger_ref=str(first.change_id or first.id), created_by=actor.label[:400],
        generated_at=now, counts={"items": len(rows)}, created_at=now, updated_at=now)
    session.add(campaign)
    session.flush()
    for row in rows:
        row["campaign_id"] = campaign.id
    notify(session, recipient_id=reviewer_id, kind="certification.micro",
           subject=f"Review {len(rows)} access item(s) after a move",
           body=(f"Someone who now reports to you moved and holds access requested in their "
                 f"old position: {', '.join(sorted(names))}. Certify or revoke each item "
                 f"of {campaign.name} by {campaign.deadline_at.date().isoformat()}."),
           object_type="campaign", object_id=str(campaign.id),
           dedupe_key=f"certification.micro:{campaign.id}", clock=clock)
    return campaign, rows


def open_micro_campaigns(session: Session, *, actor: Actor, clock: Clock) -> int:
    """Open a ``micro`` campaign per reviewer for the open review flags no campaign covers
    yet (see the module doc); return how many review items were created. Audited:
    ``campaign.create`` (context ``trigger``) per campaign."""
    by_reviewer: dict[uuid.UUID, list[ReviewFlag]] = defaultdict(list)
    for flag in _uncovered_flags(session):
        assert flag.reviewer_id is not None
        by_reviewer[flag.reviewer_id].append(flag)
    made = 0
    events: list[EventSpec] = []
    for reviewer_id, flags in sorted(by_reviewer.items(), key=lambda kv: str(kv[0])):
        opened = _open_one(session, reviewer_id, flags, actor=actor, clock=clock)
        if opened is None:
            continue
        campaign, rows = opened
        bulk_insert(session, ReviewItem, rows)
        made += len(rows)
        events.append(EventSpec(action="campaign.create", object_type="campaign",
                                object_id=campaign.id, after=snapshot(campaign),
                                context={"trigger": "mover", "items": len(rows),
                                         "review_flags": [r["context"]["review_flag_id"]
                                                          for r in rows]}))
    session.flush()
    record_many(session, events, actor=actor, clock=clock)
    return made
