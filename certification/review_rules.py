"""The rules every reviewing action shares: who sees an item, who decides it, when a
decision is final, when a comment is mandatory (see :mod:`certification.review`)."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.orm import Session

from certification.models import Campaign, ReviewerSignoff, ReviewItem
from idgov.auth.caller import Caller
from idgov.db.repository import get_or_404
from idgov.errors import Conflict, FieldError, Forbidden, InvalidInput, NotFound
from idgov.models.identity import GroupMember

READ_ALL = ("certification:read", "certification:admin")
ADMIN = "certification:admin"
REVIEW = "certification:review"
DECISIONS = ("pending", "certify", "revoke")


def reads_all(caller: Caller) -> bool:
    """Administrators and auditors see every item of every campaign."""
    return any(caller.can(c) for c in READ_ALL)


def campaign_or_404(session: Session, campaign_id: uuid.UUID) -> Campaign:
    return get_or_404(session, Campaign, campaign_id, what="campaign")


def require_active(campaign: Campaign) -> None:
    """Decisions, reassignments and sign-offs only while the campaign is active (409)."""
    if campaign.state != "active":
        raise Conflict(f"campaign {campaign.name} is {campaign.state}: its items cannot "
                       "change", state=campaign.state)


def require_decision(decision: str) -> None:
    if decision not in DECISIONS:
        raise InvalidInput("unknown decision",
                           errors=[FieldError("decision", "certify, revoke or pending")])


def is_mine(session: Session, caller: Caller, item: ReviewItem) -> bool:
    """The caller reviews the item (as its reviewer, or as a member of its reviewer group
    while no member has taken it) and it is not about their own access."""
    me = caller.identity_id
    if me is None or item.identity_id == me:
        return False
    if item.reviewer_id == me:
        return True
    return item.reviewer_id is None and item.reviewer_group_id is not None and session.get(
        GroupMember, (item.reviewer_group_id, me)) is not None


def is_final(session: Session, item: ReviewItem) -> bool:
    """The item's reviewer signed off, or its decision has already been applied."""
    if item.remediation != "none":
        return True
    return item.reviewer_id is not None and session.get(
        ReviewerSignoff, (item.campaign_id, item.reviewer_id)) is not None


def decidable(session: Session, caller: Caller, item_id: uuid.UUID
              ) -> tuple[ReviewItem, Campaign, bool]:
    """The item, its campaign, and whether the caller reviews it (False: an administrator
    acting on someone else's item). 404 when the caller may not see it, 403 when they see
    it but may not decide it (auditors; their own access), 409 when the campaign is not
    active or the decision is final."""
    item = session.get(ReviewItem, item_id)
    if item is None:
        raise NotFound(f"review item {item_id} does not exist")
    mine = is_mine(session, caller, item)
    if not mine and not reads_all(caller):
        raise NotFound(f"review item {item_id} does not exist")
    if caller.identity_id is not None and caller.identity_id == item.identity_id:
        raise Forbidden("nobody reviews their own access")
    if not mine and not caller.can(ADMIN):
        raise Forbidden("only the item's reviewer or an administrator decides it")
    campaign = campaign_or_404(session, item.campaign_id)
    require_active(campaign)
    if is_final(session, item):
        raise Conflict(f"the decision on review item {item_id} is final: its reviewer "
                       "signed off")
    return item, campaign, mine


def clean(comment: str | None) -> str | None:
    text = (comment or "").strip()
    return text or None


def require_comment(decision: str, comment: str | None, *, privileged: int | bool,
                    sod: int | bool) -> None:
    """A comment is mandatory to revoke privileged access and to certify an item in an
    SoD conflict (422 at ``comment``)."""
    if comment:
        return
    if decision == "revoke" and privileged:
        raise InvalidInput("a comment is mandatory to revoke privileged access",
                           errors=[FieldError("comment",
                                              "mandatory to revoke privileged access")])
    if decision == "certify" and sod:
        raise InvalidInput("a comment is mandatory to certify access in an SoD conflict",
                           errors=[FieldError("comment", "mandatory to certify an item in "
                                                         "an SoD conflict")])


def decision_of(item: ReviewItem) -> dict[str, Any]:
    """What the audit trail keeps of an item's decision."""
    return {"decision": item.decision, "decided_at": item.decided_at,
            "decided_by": item.decided_by, "comment": item.comment,
            "reviewer_id": item.reviewer_id}
