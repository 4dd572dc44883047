"""Closing the loop: a reviewer's decisions take effect, and undecided items meet the
campaign's deadline policy.

- **certify** -> :func:`idgov.assignments.service.set_last_certified_many` (at = now, by =
  who decided the item); remediation stays ``none``, ``remediated_at`` says when it took
  effect.
- **revoke** -> :func:`idgov.assignments.service.revoke_many` (reason ``certification:
  <campaign name>``: the assignments are end-dated and their provisioning revoke operations
  are recorded, exactly as revoking them one by one in item order would) and remediation
  ``requested``; :func:`certification.verification.verify_remediation` later
  turns it ``confirmed`` or ``failed``. An assignment that already ended is not revoked again:
  the item is ``requested`` and followed through the operations that ended it.
- **protected access** (:mod:`certification.protection`: last owner or administrator of an
  application, break-glass) is never revoked here: the item goes ``escalated`` and the
  campaign's fallback group members (else the administrators) are told. A chunk is judged
  at once (:func:`certification.protection.protection_reasons`), in item order: of two last
  administrators, the first is revoked and the second escalates.
- **micro-certification items** (``context.review_flag_id``): the mover's review flag is
  closed with the decision through :func:`idgov.lifecycle.review_flags.close_flag`. One path
  revokes: this module revokes first (certification's reason), so ``close_flag('revoked')``
  finds the assignment ended and only closes the flag; ``close_flag('kept')`` records the
  certification itself (no second ``set_last_certified``).

Items are applied in chunks of ``CHUNK`` (by id), each with a fixed number of statements
(mover flags aside). An item is applied once: only decided items with remediation ``none``
and no ``remediated_at`` are taken. Every change of remediation is audited
(``review_item.remediate``, one event per item, written in bulk).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from certification.composition import apply_composition_items
from certification.models import Campaign, ReviewItem
from certification.protection import protection_reasons
from certification.verification import verify_remediation
from idgov.assignments import service as assignments
from idgov.assignments.repository import load_many
from idgov.audit.service import EventSpec, record, record_many, snapshot
from idgov.clock import Clock
from idgov.db.repository import get_or_404
from idgov.errors import Conflict, NotFound
from idgov.lifecycle.review_flags import close_flag
from idgov.models.assignment import Assignment
from idgov.models.auth import ServiceRoleGrant
from idgov.models.hr import ReviewFlag
from idgov.models.identity import GroupMember, Identity
from idgov.notifications.service import notify
from idgov.types import Actor

__all__ = ["apply_decisions", "close_campaign", "escalation_recipients",
           "verify_remediation"]

CHUNK = 500
COUNT_KEYS = ("certified", "requested", "escalated")


def escalation_recipients(session: Session, campaign: Campaign) -> list[uuid.UUID]:
    """Who hears of escalated items: the active members of the campaign's fallback group,
    else the active administrators."""
    if campaign.fallback_group_id is not None:
        stmt = (select(GroupMember.identity_id)
                .join(Identity, Identity.id == GroupMember.identity_id)
                .where(GroupMember.group_id == campaign.fallback_group_id))
    else:
        stmt = (select(ServiceRoleGrant.identity_id)
                .join(Identity, Identity.id == ServiceRoleGrant.identity_id)
                .where(ServiceRoleGrant.role == "administrator"))
    stmt = stmt.where(Identity.lifecycle_state == "active")
    return sorted(set(session.scalars(stmt)), key=str)


def _ended(assignment: Assignment, now: datetime) -> bool:
    return assignment.revoked_at is not None or (
        assignment.valid_until is not None and assignment.valid_until <= now)


def _open_flag(session: Session, item: ReviewItem) -> ReviewFlag | None:
    flag_id = (item.context or {}).get("review_flag_id")
    if not flag_id:
        return None
    flag = session.get(ReviewFlag, uuid.UUID(str(flag_id)))
    return flag if flag is not None and flag.state == "open" else None


def _remediation(item: ReviewItem) -> dict[str, Any]:
    return {"remediation": item.remediation, "remediated_at": item.remediated_at}


def _subject(item: ReviewItem) -> dict[str, str]:
    """What the item reviews, for the audit context: the assignment or the role link."""
    for key in ("assignment_id", "role_entitlement_id", "role_inclusion_id"):
        value = getattr(item, key)
        if value is not None:
            return {key: str(value)}
    return {}


class _Batch:
    """Remediation changes of one call, audited together at the end."""

    def __init__(self, campaign: Campaign, actor: Actor, clock: Clock) -> None:
        self.campaign = campaign
        self.actor = actor
        self.clock = clock
        self.counts = dict.fromkeys(COUNT_KEYS, 0)
        self.events: list[EventSpec] = []
        self.escalated: list[ReviewItem] = []

    def set(self, item: ReviewItem, state: str, **evidence: Any) -> None:
        before = _remediation(item)
        item.remediation = state
        item.remediated_at = self.clock.now()
        note = {k: v for k, v in evidence.items() if v is not None}
        if note:
            item.context = {**(item.context or {}), "remediation": note}
        self.events.append(EventSpec(action="review_item.remediate", object_type="review_item",
                                     object_id=item.id, before=before,
                                     after=_remediation(item),
                                     context={"campaign_id": str(item.campaign_id),
                                              **_subject(item), **note}))
        self.counts[state] = self.counts.get(state, 0) + 1
        if state == "escalated":
            self.escalated.append(item)

    def finish(self, session: Session) -> dict[str, int]:
        session.flush()
        record_many(session, self.events, actor=self.actor, clock=self.clock)
        if self.escalated:
            _tell_escalated(session, self.campaign, self.escalated, clock=self.clock)
        return self.counts


def _tell_escalated(session: Session, campaign: Campaign, items: Sequence[ReviewItem], *,
                    clock: Clock) -> None:
    reasons = sorted({str((i.context or {}).get("remediation", {}).get("reason", ""))
                      for i in items} - {""})
    for recipient in escalation_recipients(session, campaign):
        notify(session, recipient_id=recipient, kind="certification.escalated",
               subject=f"{len(items)} review item(s) of {campaign.name} need a decision",
               body=(f"The campaign {campaign.name} could not remove {len(items)} access "
                     "item(s) automatically; decide them by hand. "
                     + (f"Why: {'; '.join(reasons)}." if reasons else "")),
               object_type="campaign", object_id=str(campaign.id),
               dedupe_key=f"certification.escalated:{campaign.id}:{recipient}:{items[0].id}",
               clock=clock)


def _revoke(session: Session, revoking: Sequence[tuple[ReviewItem, Assignment]],
            batch: _Batch) -> None:
    """The chunk's revokes, in item order: protected access escalated, the rest revoked with
    one :func:`idgov.assignments.service.revoke_many`, then mover flags closed."""
    now = batch.clock.now()
    ended = {a.id for _i, a in revoking if _ended(a, now)}
    pending = list({a.id: a for _i, a in revoking if a.id not in ended}.values())
    reasons = protection_reasons(session, assignments=pending, at=now)
    to_revoke = [a.id for a in pending if a.id not in reasons]
    if to_revoke:
        assignments.revoke_many(session, assignment_ids=to_revoke,
                                reason=f"certification: {batch.campaign.name}"[:2000],
                                actor=batch.actor, clock=batch.clock)
    revoked_here: set[uuid.UUID] = set()
    for item, assignment in revoking:
        if assignment.id in reasons:
            batch.set(item, "escalated", reason=reasons[assignment.id])
            continue
        already = assignment.id in ended or assignment.id in revoked_here
        revoked_here.add(assignment.id)
        flag = _open_flag(session, item)
        if flag is not None:
            close_flag(session, flag_id=flag.id, decision="revoked", actor=batch.actor,
                       clock=batch.clock, comment=item.comment)
        batch.set(item, "requested",
                  note="the assignment had already ended" if already else None)


def _apply(session: Session, items: Sequence[ReviewItem], batch: _Batch) -> None:
    """Make a chunk of decided items take effect, set-based: one read of their assignments,
    the certifications with one :func:`idgov.assignments.service.set_last_certified_many`,
    the revocations as :func:`_revoke`; only mover flags are closed one by one."""
    links = [i for i in items if i.assignment_id is None]
    if links:  # composition items: what a role includes, not who holds what
        apply_composition_items(session, links, batch)
        items = [i for i in items if i.assignment_id is not None]
    if not items:
        return
    found = load_many(session, [i.assignment_id for i in items if i.assignment_id])
    now = batch.clock.now()
    certify: list[tuple[uuid.UUID, str]] = []
    revoking: list[tuple[ReviewItem, Assignment]] = []
    for item in items:
        assignment = found.get(item.assignment_id) if item.assignment_id else None
        if assignment is None:  # RESTRICT keeps it; a row vanished under us is a bug
            raise NotFound(f"assignment {item.assignment_id} does not exist")
        if item.decision == "certify":
            flag = _open_flag(session, item)
            if flag is not None and not _ended(assignment, now):
                close_flag(session, flag_id=flag.id, decision="kept", actor=batch.actor,
                           clock=batch.clock, comment=item.comment)
            else:
                certify.append((assignment.id, (item.decided_by or batch.actor.label)[:400]))
            item.remediated_at = now
            batch.counts["certified"] += 1
        elif item.decision == "revoke":
            revoking.append((item, assignment))
    if certify:
        assignments.set_last_certified_many(session, items=certify, at=now,
                                            actor=batch.actor, clock=batch.clock)
    if revoking:
        _revoke(session, revoking, batch)


def _unapplied(campaign_id: uuid.UUID) -> Any:
    return select(ReviewItem).where(
        ReviewItem.campaign_id == campaign_id, ReviewItem.decision.in_(("certify", "revoke")),
        ReviewItem.remediation == "none", ReviewItem.remediated_at.is_(None))


def _chunks(session: Session, stmt: Any) -> Iterable[list[ReviewItem]]:
    """The items of ``stmt`` in chunks, re-querying after each (applied items drop out)."""
    last: uuid.UUID | None = None
    while True:
        page = stmt.order_by(ReviewItem.id).limit(CHUNK)
        if last is not None:
            page = page.where(ReviewItem.id > last)
        found = list(session.scalars(page))
        if not found:
            return
        yield found
        last = found[-1].id


def apply_decisions(session: Session, *, campaign_id: uuid.UUID, reviewer_id: uuid.UUID,
                    actor: Actor, clock: Clock) -> dict[str, int]:
    """Make the decisions of ``reviewer_id``'s items of a campaign take effect (their
    sign-off): certify -> last certified; revoke -> assignment revoked, remediation
    ``requested``; protected access -> ``escalated`` (see the module doc). Items already
    applied are skipped. Counts: ``certified``, ``requested``, ``escalated``. NotFound for an
    unknown campaign."""
    campaign = get_or_404(session, Campaign, campaign_id, what="campaign")
    batch = _Batch(campaign, actor, clock)
    stmt = _unapplied(campaign_id).where(ReviewItem.reviewer_id == reviewer_id)
    for chunk in _chunks(session, stmt):
        _apply(session, chunk, batch)
    return batch.finish(session)


def _undecided_at_close(session: Session, campaign: Campaign, batch: _Batch,
                        reason: str) -> int:
    """Apply the deadline policy to the items still pending; how many were pending."""
    stmt = select(ReviewItem).where(ReviewItem.campaign_id == campaign.id,
                                    ReviewItem.decision == "pending",
                                    ReviewItem.remediation == "none")
    now = batch.clock.now()
    pending = 0
    for chunk in _chunks(session, stmt):
        pending += len(chunk)
        revoking: list[ReviewItem] = []
        for item in chunk:
            if campaign.deadline_action == "escalate":
                batch.set(item, "escalated",
                          reason=f"undecided when the campaign closed ({reason})")
            elif campaign.deadline_action == "revoke":
                before = {"decision": item.decision}
                item.decision = "revoke"
                item.decided_at = now
                item.decided_by = batch.actor.label[:400]
                item.comment = f"revoked automatically: undecided when the campaign closed " \
                               f"({reason})"
                batch.events.append(EventSpec(
                    action="review_item.decide", object_type="review_item", object_id=item.id,
                    before=before, after={"decision": "revoke"},
                    context={"campaign_id": str(campaign.id), "automatic": True,
                             "comment": item.comment}))
                revoking.append(item)
            # keep: the access stays as it is, the item stays undecided in the evidence.
        _apply(session, revoking, batch)
    return pending


def close_campaign(session: Session, *, campaign_id: uuid.UUID, actor: Actor, clock: Clock,
                   reason: str) -> Campaign:
    """Close an active campaign: every decided item not applied yet takes effect, the items
    still pending meet ``deadline_action`` (revoke — protected access escalated instead —,
    keep, or escalate), the campaign becomes ``closed``. ``counts["at_close"]`` records what
    happened. NotFound for an unknown campaign; Conflict unless it is active."""
    campaign = get_or_404(session, Campaign, campaign_id, what="campaign")
    if campaign.state != "active":
        raise Conflict(f"campaign {campaign.name} is {campaign.state}", state=campaign.state)
    before = snapshot(campaign)
    batch = _Batch(campaign, actor, clock)
    for chunk in _chunks(session, _unapplied(campaign_id)):
        _apply(session, chunk, batch)
    pending = _undecided_at_close(session, campaign, batch, reason)
    counts = batch.finish(session)
    campaign.state = "closed"
    campaign.closed_at = clock.now()
    campaign.counts = {**(campaign.counts or {}),
                       "at_close": {**counts, "undecided": pending,
                                    "deadline_action": campaign.deadline_action}}
    session.flush()
    record(session, actor=actor, action="campaign.close", object_type="campaign",
           object_id=campaign.id, clock=clock, before=before, after=snapshot(campaign),
           context={"reason": reason})
    return campaign
