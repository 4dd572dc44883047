"""Reviewing a campaign: a reviewer's page, decisions (one or in bulk), reassignment,
sign-off, progress.

Row rules: ``certification:read`` and ``certification:admin`` (administrators, auditors) see
every item; a person sees the items they review — theirs, or their group's — never one
about their own access; an item they may not see does not exist for them (404).
Administrators (``certification:admin``) decide and reassign any item (the audit trail
and ``decided_by`` say who); auditors decide nothing (403).

A decision (certify, revoke, or pending to undo one) may change while the campaign is
active and until the reviewer signs off (an administrator may sign off for a reviewer, with
a reason); then it is final (409) and
:func:`certification.remediation.apply_decisions` makes it take effect. A member of the
reviewer group who decides a group item takes it (it becomes theirs alone, to sign off). The
campaign closes (:func:`certification.remediation.close_campaign`) once the reviewer of
every item has signed off. A comment is mandatory to revoke privileged access and to certify
an item in an SoD conflict (422 at ``comment``). Nobody reviews their own access, including
through reassignment (422).

Audit: ``review_item.decide`` (before/after decision; a bulk decision writes one event per
item with :func:`idgov.audit.service.record_many`), ``review_item.reassign``,
``review.sign_off`` (object ``campaign``).
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import or_
from sqlalchemy.orm import Session

from certification import remediation
from certification import review_repository as repo
from certification.models import Campaign, ReviewerSignoff, ReviewItem
from certification.review_bulk import BulkSelection, bulk_decide
from certification.review_repository import ItemView
from certification.review_rules import (
    campaign_or_404,
    clean,
    decidable,
    decision_of,
    is_mine,
    reads_all,
    require_active,
    require_comment,
    require_decision,
)
from certification.schemas_review import ItemFilter
from idgov.audit.service import record
from idgov.auth.caller import Caller
from idgov.clock import Clock
from idgov.db.repository import Page
from idgov.errors import Conflict, FieldError, Forbidden, InvalidInput, NotFound
from idgov.models.identity import Identity
from idgov.notifications.service import notify

__all__ = ["BulkSelection", "ItemView", "Progress", "ReviewerLine", "SignOffOutcome",
           "bulk_decide", "decide", "get_item", "list_items", "progress", "reassign",
           "sign_off", "sign_off_outcome"]


def list_items(session: Session, *, caller: Caller, campaign_id: uuid.UUID,
               filters: ItemFilter) -> Page[ItemView]:
    """A page of a campaign's items matching ``filters``, grouped by person (display name)
    — by role for a composition campaign —, then by item, keyset-paginated, in one query:
    the caller's items for a person, every item for readers. NotFound for an unknown
    campaign."""
    campaign = campaign_or_404(session, campaign_id)
    # A person's row rule restricts to the campaign itself (and must drive the query).
    rule = (ReviewItem.campaign_id == campaign_id if reads_all(caller)
            else repo.my_items(caller.identity_id, campaign_id))
    clauses = [rule, *repo.selection_clauses(filters)]
    views, cursor = repo.page(session, clauses=clauses, limit=filters.limit,
                              cursor=filters.cursor, search=bool(filters.q),
                              by_role=campaign.kind == "composition")
    return Page(items=views, next_cursor=cursor)


def get_item(session: Session, *, caller: Caller, item_id: uuid.UUID) -> ItemView:
    """One item with its context; NotFound when it does not exist or the caller may not
    see it."""
    view = repo.view_of(session, item_id)
    if view is None or not (reads_all(caller) or is_mine(session, caller, view.item)):
        raise NotFound(f"review item {item_id} does not exist")
    return view


def _view(session: Session, item_id: uuid.UUID) -> ItemView:
    view = repo.view_of(session, item_id)
    if view is None:  # pragma: no cover - the item was just written
        raise NotFound(f"review item {item_id} does not exist")
    return view


def decide(session: Session, *, item_id: uuid.UUID, decision: str, comment: str | None,
           caller: Caller, clock: Clock) -> ItemView:
    """Record the caller's decision on one item (``pending`` undoes one); a group member
    takes the group's item. 404 unseen, 403 auditors and one's own access, 409 campaign
    not active or decision final, 422 without a mandatory comment."""
    require_decision(decision)
    item, campaign, mine = decidable(session, caller, item_id)
    text = clean(comment)
    require_comment(decision, text, privileged=item.privileged, sod=item.sod_conflict)
    before = decision_of(item)
    decided = decision != "pending"
    item.decision = decision
    item.decided_at = clock.now() if decided else None
    item.decided_by = caller.actor.label[:400] if decided else None
    item.comment = text
    if mine and item.reviewer_id is None:
        item.reviewer_id = caller.identity_id
    session.flush()
    record(session, actor=caller.actor, action="review_item.decide", object_type="review_item",
           object_id=item.id, clock=clock, before=before, after=decision_of(item),
           context={"campaign_id": campaign.id, "administrator_override": not mine})
    return _view(session, item.id)


def _target(session: Session, item: ReviewItem, to_identity_id: uuid.UUID) -> Identity:
    target = session.get(Identity, to_identity_id)
    problem = None
    if target is None:
        problem = f"no identity {to_identity_id}"
    elif to_identity_id == item.identity_id:
        problem = "nobody reviews their own access"
    elif target.lifecycle_state != "active":
        problem = f"{target.display_name} is {target.lifecycle_state}, not active"
    elif to_identity_id == item.reviewer_id:
        problem = f"{target.display_name} already reviews this item"
    if problem is not None or target is None:
        raise InvalidInput(f"cannot reassign to this person: {problem}",
                           errors=[FieldError("to_identity_id", str(problem))])
    if session.get(ReviewerSignoff, (item.campaign_id, to_identity_id)) is not None:
        raise Conflict(f"{target.display_name} has already signed off in this campaign")
    return target


def reassign(session: Session, *, item_id: uuid.UUID, to_identity_id: uuid.UUID,
             comment: str | None, caller: Caller, clock: Clock) -> ItemView:
    """Give an item to another reviewer, who is told; its decision goes back to pending.
    The item's reviewer (or a member of its group) or an administrator. 422 for an unknown
    or inactive person, the person whose access it is, or the current reviewer; 409 when
    the new reviewer has already signed off; otherwise as :func:`decide`."""
    item, campaign, mine = decidable(session, caller, item_id)
    target = _target(session, item, to_identity_id)
    text = clean(comment)
    before = {**decision_of(item), "reviewer_group_id": item.reviewer_group_id}
    if item.original_reviewer_id is None:
        item.original_reviewer_id = item.reviewer_id
    item.reviewer_id, item.reviewer_group_id = target.id, None
    item.decision, item.decided_at, item.decided_by, item.comment = "pending", None, None, None
    session.flush()
    record(session, actor=caller.actor, action="review_item.reassign",
           object_type="review_item", object_id=item.id, clock=clock, before=before,
           after={**decision_of(item), "reviewer_group_id": None},
           context={"campaign_id": campaign.id, "comment": text,
                    "administrator_override": not mine})
    view = _view(session, item.id)
    notify(session, recipient_id=target.id, kind="certification.reassigned",
           subject=f"Review reassigned to you: {view.identity_name or view.role_name}, "
                   f"{view.access_name}",
           body=(f"{caller.name} asked you to review {view.described} "
                 f"in the campaign {campaign.name} (deadline "
                 f"{campaign.deadline_at:%Y-%m-%d})." + (f" Comment: {text}" if text else "")),
           object_type="review_item", object_id=str(item.id), clock=clock)
    return view


@dataclass(frozen=True)
class SignOffOutcome:
    """A reviewer's sign-off, what their decisions did, and the campaign's state after."""

    signoff: ReviewerSignoff
    applied: dict[str, int]
    campaign_state: str
    signed_off_by: str = ""
    on_behalf: bool = False


def _signing_reviewer(caller: Caller, reviewer_id: uuid.UUID | None,
                      reason: str | None) -> tuple[uuid.UUID, str | None]:
    """Whose part is signed off, and the reason when it is someone else's (403, 422)."""
    me = caller.identity_id
    if reviewer_id is None or reviewer_id == me:
        if me is None:
            raise Forbidden("only a reviewer (a person) signs off their part; an "
                            "administrator names the reviewer (reviewer_id)")
        return me, None
    if not caller.can("certification:admin"):
        raise Forbidden("only an administrator signs off for another reviewer")
    text = clean(reason)
    if text is None:
        raise InvalidInput("a reason is required to sign off for another reviewer",
                           errors=[FieldError("reason", "a reason is required to sign off "
                                                        "for another reviewer")])
    return reviewer_id, text


def sign_off_outcome(session: Session, *, campaign_id: uuid.UUID, caller: Caller,
                     clock: Clock, reviewer_id: uuid.UUID | None = None,
                     reason: str | None = None) -> SignOffOutcome:
    """Close a reviewer's part of an active campaign: their decisions become final and take
    effect (``remediation.apply_decisions``); when the reviewer of every item has signed
    off, the campaign closes (``remediation.close_campaign``).

    The caller signs off their own part; with ``certification:admin`` they may name another
    ``reviewer_id`` and sign off for them, with a mandatory ``reason`` (the audit event's
    actor is the caller, ``after.reviewer_id`` the reviewer, ``context`` says on whose
    behalf and why; the reviewer is told). 403 without an identity (and no reviewer named)
    or for another reviewer without ``certification:admin``; 404 unknown campaign, or the
    caller reviews no item of it; 422 without a reason for another reviewer, or when that
    reviewer reviews no item of it; 409 when the campaign is not active, the reviewer signed
    off already, or items of theirs are still pending."""
    reviewer, why = _signing_reviewer(caller, reviewer_id, reason)
    on_behalf = why is not None
    campaign = campaign_or_404(session, campaign_id)
    mine = [ReviewItem.campaign_id == campaign_id, ReviewItem.reviewer_id == reviewer]
    total = repo.count(session, *mine)
    if total == 0 and on_behalf:
        raise InvalidInput(f"{reviewer} reviews no item of this campaign",
                           errors=[FieldError("reviewer_id", "reviews no item of this "
                                                             "campaign")])
    if total == 0:
        raise NotFound(f"you review no item of campaign {campaign_id}")
    require_active(campaign)
    whose = "this reviewer has" if on_behalf else "you have"
    if session.get(ReviewerSignoff, (campaign_id, reviewer)) is not None:
        raise Conflict(f"{whose} already signed off in this campaign")
    pending = repo.count(session, *mine, ReviewItem.decision == "pending")
    if pending:
        raise Conflict(f"{pending} items of the reviewer are still pending: decide them "
                       "before signing off", pending=pending)
    now = clock.now()
    signoff = ReviewerSignoff(campaign_id=campaign_id, reviewer_id=reviewer, signed_off_at=now)
    session.add(signoff)
    session.flush()
    counts = {"items": total,
              "certify": repo.count(session, *mine, ReviewItem.decision == "certify")}
    counts["revoke"] = total - counts["certify"]
    record(session, actor=caller.actor, action="review.sign_off", object_type="campaign",
           object_id=campaign_id, clock=clock,
           after={"reviewer_id": reviewer, "signed_off_at": now, **counts},
           context={"on_behalf_of": reviewer, "signed_off_by": caller.actor.label,
                    "reason": why} if on_behalf else None)
    applied = remediation.apply_decisions(session, campaign_id=campaign_id,
                                          reviewer_id=reviewer, actor=caller.actor,
                                          clock=clock)
    if on_behalf:
        notify(session, recipient_id=reviewer, kind="certification.signed_off_for_you",
               subject=f"Your review in {campaign.name} was signed off for you",
               body=(f"{caller.name} signed off your part of the campaign {campaign.name}: "
                     f"your {total} decisions are final and take effect. Reason: {why}"),
               object_type="campaign", object_id=str(campaign_id), clock=clock)
    remaining = repo.count(session, ReviewItem.campaign_id == campaign_id,
                           or_(ReviewItem.reviewer_id.is_(None), ~repo.signed_off()))
    state = campaign.state
    if remaining == 0:
        state = remediation.close_campaign(session, campaign_id=campaign_id,
                                           actor=caller.actor, clock=clock,
                                           reason="every reviewer signed off").state
    return SignOffOutcome(signoff=signoff, applied=applied, campaign_state=state,
                          signed_off_by=caller.actor.label, on_behalf=on_behalf)


def sign_off(session: Session, *, campaign_id: uuid.UUID, caller: Caller, clock: Clock,
             reviewer_id: uuid.UUID | None = None,
             reason: str | None = None) -> ReviewerSignoff:
    """:func:`sign_off_outcome`, returning the sign-off."""
    return sign_off_outcome(session, campaign_id=campaign_id, caller=caller, clock=clock,
                            reviewer_id=reviewer_id, reason=reason).signoff


@dataclass
class ReviewerLine:
    """One reviewer's (or one group's untaken) items of a campaign, by decision."""

    reviewer_id: uuid.UUID | None
    reviewer_group_id: uuid.UUID | None
    reviewer_name: str | None = None
    total: int = 0
    pending: int = 0
    certify: int = 0
    revoke: int = 0
    signed_off_at: datetime | None = None


@dataclass
class Progress:
    campaign_id: uuid.UUID
    state: str
    total: int = 0
    by_decision: dict[str, int] = field(default_factory=dict)
    reviewers: list[ReviewerLine] = field(default_factory=list)

    @property
    def reviewers_total(self) -> int:
        return sum(1 for line in self.reviewers if line.reviewer_id is not None)

    @property
    def reviewers_signed_off(self) -> int:
        return sum(1 for line in self.reviewers if line.signed_off_at is not None)


def progress(session: Session, *, campaign_id: uuid.UUID, caller: Caller) -> Progress:
    """Counts by decision and by reviewer, with each reviewer's sign-off: every reviewer
    for readers, a person's own part for a person (404 when they review nothing in it)."""
    campaign: Campaign = campaign_or_404(session, campaign_id)
    clauses = [] if reads_all(caller) else [repo.my_items(caller.identity_id, campaign_id)]
    rows = repo.counts_by_reviewer(session, campaign_id, *clauses)
    if not rows and clauses:
        raise NotFound(f"you review no item of campaign {campaign_id}")
    lines: dict[tuple[uuid.UUID | None, uuid.UUID | None], ReviewerLine] = {}
    by_decision: dict[str, int] = defaultdict(int)
    for reviewer_id, group_id, decision, n in rows:
        key = (reviewer_id, None if reviewer_id is not None else group_id)
        line = lines.setdefault(key, ReviewerLine(reviewer_id=key[0], reviewer_group_id=key[1]))
        line.total += n
        setattr(line, decision, getattr(line, decision) + n)
        by_decision[decision] += n
    names = repo.names(session, [k[0] for k in lines if k[0] is not None])
    signed = repo.signoffs(session, campaign_id)
    for line in lines.values():
        if line.reviewer_id is not None:
            line.reviewer_name = names.get(line.reviewer_id)
            line.signed_off_at = signed.get(line.reviewer_id)
    ordered = sorted(lines.values(), key=lambda x: (x.reviewer_name is None,
                                                    x.reviewer_name or "",
                                                    str(x.reviewer_id or x.reviewer_group_id)))
    return Progress(campaign_id=campaign_id, state=campaign.state,
                    total=sum(by_decision.values()),
                    by_decision={d: by_decision.get(d, 0) for d in
                                 ("pending", "certify", "revoke")},
                    reviewers=ordered)
