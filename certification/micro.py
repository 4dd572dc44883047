"""Micro-certifications triggered by events: small ``micro`` campaigns opened by the
``certification.micro`` job for what an event puts in doubt.

Triggers, each with the event it reviews and its reviewer (the finding lives in the module
named):

- ``mover`` (micro_sources): a mover's requested access was flagged for the new manager;
  the flag's reviewer.
- ``sod_exception`` (micro_sod): an SoD exception expires within
  ``cert_sod_expiry_warning_days``; the holder's manager, else the exception's approver.
- ``unused`` (micro_unused): no sign-in on the target for ``cert_unused_days``; the
  manager, else the application's owner.
- ``aggregation`` (micro_sources): access found on a target by aggregation
  (``cert_review_aggregated``); the manager, else the application's owner.

:func:`open_micro_campaigns` runs the enabled triggers in that order. Each candidate names
its event with a key, stored as the item's ``trigger_key``: a key that has an item already
is covered and opens nothing again (running the job twice opens nothing new). A candidate
is also skipped when its assignment has ended, when it is under review in an active
campaign (an item there whose decision has not taken effect: counted ``under_review``; a
later run takes it up once that review is over, if the event still holds), and when nobody
can review it (counted ``no_reviewer``; administrators see these counts in the log and
decide through the ordinary means: the flags under ``/review-flags``, the SoD exceptions,
a campaign of their own).

Per trigger and reviewer, one active ``micro`` campaign per run (name and description
saying why; deadline :data:`MICRO_DEADLINE`, reminders :data:`MICRO_REMINDER_DAYS` days
before, undecided items escalated at the deadline), one item per candidate (context:
``trigger``, why, how the access was granted, what the trigger adds; ``sod_conflict`` for
``sod_exception`` items, so certifying needs a comment), the reviewer notified once.
Audited: ``campaign.create`` per campaign (context ``trigger``, ``items``). Decisions take
effect through :mod:`certification.remediation` like any other: certify sets the
assignment's last certified, revoke ends it (and a mover's flag is closed with it).
"""

from __future__ import annotations

import logging
import uuid
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from certification.micro_sod import sod_candidates
from certification.micro_sources import (
    Candidate,
    People,
    aggregation_candidates,
    chunked,
    mover_candidates,
)
from certification.micro_unused import unused_candidates
from certification.models import Campaign, ReviewItem
from idgov.assignments.repository import in_force
from idgov.audit.service import EventSpec, record_many, snapshot
from idgov.catalog.snapshot import current_snapshot
from idgov.clock import Clock
from idgov.config import Settings
from idgov.db.repository import bulk_insert
from idgov.models.assignment import Assignment
from idgov.models.identity import Identity
from idgov.notifications.service import notify
from idgov.policy.snapshot import PolicySnapshot
from idgov.types import Actor

log = logging.getLogger(__name__)

MICRO_DEADLINE = timedelta(days=14)
MICRO_REMINDER_DAYS = [3]
TRIGGERS = ("mover", "sod_exception", "unused", "aggregation")
COUNT_KEYS = ("items", "campaigns", "under_review", "ended", "no_reviewer")
NAMES_IN_NOTICE = 20


@dataclass(frozen=True)
class MicroTriggers:
    """Which triggers beside ``mover`` (always on) run: days before an SoD exception's
    expiry (0: off), days without a sign-in (0: off), aggregated access (False: off)."""

    sod_expiry_warning_days: int = 0
    unused_days: int = 0
    review_aggregated: bool = False

    @classmethod
    def of(cls, settings: Settings) -> MicroTriggers:
        return cls(sod_expiry_warning_days=settings.cert_sod_expiry_warning_days,
                   unused_days=settings.cert_unused_days,
                   review_aggregated=settings.cert_review_aggregated)


MOVER_ONLY = MicroTriggers()


@dataclass(frozen=True)
class _Text:
    title: str         # the campaign's name, before "for <reviewer>"
    description: str   # the campaign's description ({days}: the trigger's setting)
    subject: str       # the notification's subject ({n}: how many items)
    why: str           # the notification's opening, and each item's context["why"]


TEXTS = {
    "mover": _Text(
        "Review after a move",
        "Access a mover requested in their old position, for the new manager to keep or "
        "revoke.",
        "Review {n} access item(s) after a move",
        "Someone who now reports to you moved and holds access requested in their old "
        "position"),
    "sod_exception": _Text(
        "Review before an SoD exception expires",
        "An exception to a segregation-of-duties rule expires within {days} days: decide "
        "which of the conflicting access to keep. Keeping both sides needs a comment (and a "
        "renewed exception), or the conflict becomes a violation.",
        "Review {n} conflicting access item(s) before an SoD exception expires",
        "An SoD exception of someone you review expires soon, and they hold both sides of "
        "the rule"),
    "unused": _Text(
        "Review of unused access",
        "Access whose account has not been signed in to for more than {days} days, as the "
        "target tells: keep it or revoke it.",
        "Review {n} access item(s) not used for a long time",
        "The target systems tell of no sign-in for a long time to this access"),
    "aggregation": _Text(
        "Review of access found on a target",
        "Access found on a target system by aggregation, never granted nor certified "
        "through the governance service: confirm it or revoke it.",
        "Review {n} access item(s) found on a target system",
        "Access was found on a target system that nobody granted through the governance "
        "service"),
}


def _covered(session: Session, keys: Sequence[str]) -> set[str]:
    found: set[str] = set()
    for batch in chunked(keys):
        found.update(k for k in session.scalars(
            select(ReviewItem.trigger_key).where(ReviewItem.trigger_key.in_(batch)))
            if k is not None)
    return found


def _under_review(session: Session, assignment_ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
    """Assignments with an item of an active campaign whose decision has not taken effect."""
    found: set[uuid.UUID] = set()
    for batch in chunked(assignment_ids):
        found.update(a for a in session.scalars(
            select(ReviewItem.assignment_id)
            .join(Campaign, Campaign.id == ReviewItem.campaign_id)
            .where(ReviewItem.assignment_id.in_(batch), Campaign.state == "active",
                   ReviewItem.remediated_at.is_(None))) if a is not None)
    return found


def _in_force(session: Session, assignment_ids: Sequence[uuid.UUID], now: datetime
              ) -> dict[uuid.UUID, Any]:
    found: dict[uuid.UUID, Any] = {}
    for batch in chunked(assignment_ids):
        for row in session.execute(
                select(Assignment.id, Assignment.identity_id, Assignment.role_id,
                       Assignment.entitlement_id, Assignment.source, Assignment.reason,
                       Assignment.last_certified_at)
                .where(Assignment.id.in_(batch), in_force(now))):
            found[row.id] = row
    return found


def _access(policy: PolicySnapshot, role_id: uuid.UUID | None,
            entitlement_id: uuid.UUID | None) -> tuple[dict[str, Any], str]:
    """(application_id, risk, privileged of what the assignment gives; its name)."""
    if role_id is not None:
        closure = policy.closure(role_id)
        apps = {policy.entitlements[e].application_id for e in closure.entitlement_set
                if e in policy.entitlements}
        return ({"application_id": next(iter(apps)) if len(apps) == 1 else None,
                 "risk": closure.risk, "privileged": closure.privileged},
                policy.role_name(role_id))
    node = policy.entitlements.get(entitlement_id)  # type: ignore[arg-type]
    if node is None:  # not in the snapshot (a catalog changing under the run): fail closed
        return ({"application_id": None, "risk": "critical", "privileged": False},
                str(entitlement_id))
    return ({"application_id": node.application_id, "risk": node.risk,
             "privileged": node.privileged}, node.name)


def _item(trigger: str, candidate: Candidate, held: Any, policy: PolicySnapshot,
          now: datetime) -> tuple[dict[str, Any], str]:
    """The item's row, and the access's name for the notice."""
    access, name = _access(policy, held.role_id, held.entitlement_id)
    kind = "role" if held.role_id is not None else "entitlement"
    return {"id": uuid.uuid4(), "assignment_id": held.id, "identity_id": held.identity_id,
            "role_id": held.role_id, "entitlement_id": held.entitlement_id,
            "source": held.source, "sod_conflict": candidate.sod_conflict,
            "reviewer_id": candidate.reviewer_id, "reviewer_group_id": None,
            "original_reviewer_id": None, "decision": "pending", "decided_at": None,
            "decided_by": None, "comment": None, "remediation": "none",
            "remediated_at": None, "trigger_key": candidate.key[:200], "created_at": now,
            "context": {"trigger": trigger, "why": TEXTS[trigger].why,
                        "reviewer_rule": candidate.reviewer_rule,
                        "item": {"type": kind, "name": name},
                        "how_granted": {"source": held.source, "reason": held.reason},
                        "last_certified_at": (held.last_certified_at.isoformat()
                                              if held.last_certified_at else None),
                        **candidate.context},
            **access}, f"{kind} {name}"


def _audit_refs(trigger: str, rows: list[dict[str, Any]],
                refs: list[str]) -> dict[str, Any]:
    if trigger == "mover":
        return {"review_flags": [r["context"]["review_flag_id"] for r in rows]}
    return {"refs": sorted(set(refs))[:100]}


def _campaign(session: Session, trigger: str, reviewer_id: uuid.UUID,
              rows: list[dict[str, Any]], names: list[str], refs: list[str], *, days: int,
              actor: Actor, clock: Clock) -> tuple[Campaign, EventSpec]:
    now = clock.now()
    text = TEXTS[trigger]
    reviewer = session.get(Identity, reviewer_id)
    who = reviewer.display_name if reviewer else str(reviewer_id)
    campaign = Campaign(
        name=f"{text.title} for {who} ({now.date().isoformat()}, {refs[0][:8]})"[:200],
        description=text.description.format(days=days)[:2000], kind="micro",
        state="active",
        scope={"identity_ids": sorted({str(r["identity_id"]) for r in rows}),
               "assignment_ids": [str(r["assignment_id"]) for r in rows]},
        fallbacks=[], starts_at=now, deadline_at=now + MICRO_DEADLINE,
        reminder_days=list(MICRO_REMINDER_DAYS), escalate_after_days=None,
        deadline_action="escalate", trigger=trigger, trigger_ref=refs[0][:200],
        created_by=actor.label[:400], generated_at=now, counts={"items": len(rows)},
        created_at=now, updated_at=now)
    session.add(campaign)
    session.flush()
    for row in rows:
        row["campaign_id"] = campaign.id
    bulk_insert(session, ReviewItem, rows)
    shown = sorted(set(names))
    listed = ", ".join(shown[:NAMES_IN_NOTICE]) + (
        f" and {len(shown) - NAMES_IN_NOTICE} more" if len(shown) > NAMES_IN_NOTICE else "")
    notify(session, recipient_id=reviewer_id, kind="certification.micro",
           subject=text.subject.format(n=len(rows)),
           body=(f"{text.why}: {listed}. Certify or revoke each item of {campaign.name} by "
                 f"{campaign.deadline_at.date().isoformat()}."),
           object_type="campaign", object_id=str(campaign.id),
           dedupe_key=f"certification.micro:{campaign.id}", clock=clock)
    event = EventSpec(action="campaign.create", object_type="campaign", object_id=campaign.id,
                      after=snapshot(campaign),
                      context={"trigger": trigger, "items": len(rows),
                               "reviewer_id": str(reviewer_id),
                               **_audit_refs(trigger, rows, refs)})
    return campaign, event


def _open_trigger(session: Session, trigger: str, candidates: list[Candidate], *,
                  policy: PolicySnapshot, days: int, actor: Actor, clock: Clock
                  ) -> tuple[dict[str, int], list[EventSpec]]:
    """Campaigns of one trigger from its candidates (see the module doc)."""
    now = clock.now()
    counts = dict.fromkeys(COUNT_KEYS, 0)
    covered = _covered(session, [c.key for c in candidates])
    fresh: list[Candidate] = []
    taken: set[uuid.UUID] = set()
    for candidate in candidates:
        if candidate.key in covered:
            continue
        if candidate.assignment_id in taken:  # one item per assignment per run
            counts["under_review"] += 1
            continue
        taken.add(candidate.assignment_id)
        fresh.append(candidate)
    ids = [c.assignment_id for c in fresh]
    busy = _under_review(session, ids)
    held = _in_force(session, ids, now)
    by_reviewer: dict[uuid.UUID, list[tuple[Candidate, Any]]] = defaultdict(list)
    for candidate in fresh:
        row = held.get(candidate.assignment_id)
        if row is None:
            counts["ended"] += 1
        elif candidate.assignment_id in busy:
            counts["under_review"] += 1
        elif candidate.reviewer_id is None:
            counts["no_reviewer"] += 1
        else:
            by_reviewer[candidate.reviewer_id].append((candidate, row))
    events: list[EventSpec] = []
    for reviewer_id, chosen in sorted(by_reviewer.items(), key=lambda kv: str(kv[0])):
        made = [_item(trigger, c, r, policy, now) for c, r in chosen]
        rows = [row for row, _name in made]
        names = [name for _row, name in made]
        _campaign_row, event = _campaign(session, trigger, reviewer_id, rows, names,
                                         [c.ref for c, _r in chosen], days=days, actor=actor,
                                         clock=clock)
        events.append(event)
        counts["items"] += len(rows)
        counts["campaigns"] += 1
    return counts, events


def run_micro_triggers(session: Session, *, actor: Actor, clock: Clock,
                       triggers: MicroTriggers = MOVER_ONLY) -> dict[str, dict[str, int]]:
    """Open the micro campaigns the enabled triggers call for (see the module doc); return
    per trigger run: ``items``, ``campaigns``, ``under_review``, ``ended``,
    ``no_reviewer``."""
    now = clock.now()
    policy = current_snapshot(session, at=now)
    people = People(session)
    plans: list[tuple[str, int, Callable[[], list[Candidate]]]] = [
        ("mover", 0, lambda: mover_candidates(session))]
    if triggers.sod_expiry_warning_days > 0:
        days = triggers.sod_expiry_warning_days
        plans.append(("sod_exception", days, lambda: sod_candidates(
            session, now=now, warning_days=days, snapshot=policy, people=people)))
    if triggers.unused_days > 0:
        idle = triggers.unused_days
        plans.append(("unused", idle, lambda: unused_candidates(
            session, now=now, unused_days=idle, snapshot=policy, people=people)))
    if triggers.review_aggregated:
        plans.append(("aggregation", 0, lambda: aggregation_candidates(
            session, now=now, people=people)))
    report: dict[str, dict[str, int]] = {}
    events: list[EventSpec] = []
    for trigger, days, find in plans:
        # Each trigger sees the items the previous ones wrote (bulk inserts run at once):
        # an assignment is under review in one micro campaign at a time.
        report[trigger], made = _open_trigger(session, trigger, find(), policy=policy,
                                              days=days, actor=actor, clock=clock)
        events.extend(made)
    session.flush()
    record_many(session, events, actor=actor, clock=clock)
    for trigger, counts in report.items():
        if counts["no_reviewer"]:
            log.info("micro-certification %s: %d assignment(s) have no reviewer and are left "
                     "to administrators", trigger, counts["no_reviewer"])
    return report


def open_micro_campaigns(session: Session, *, actor: Actor, clock: Clock,
                         triggers: MicroTriggers = MOVER_ONLY) -> int:
    """:func:`run_micro_triggers`, counted: how many review items were created. Without
    ``triggers`` only the ``mover`` trigger runs (the job passes the settings'
    :meth:`MicroTriggers.of`)."""
    report = run_micro_triggers(session, actor=actor, clock=clock, triggers=triggers)
    return sum(counts["items"] for counts in report.values())
