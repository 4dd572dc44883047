"""Campaigns: define (draft), launch (generate the review items, active), cancel, read.

Row rules: holders of ``certification:read`` (administrators, auditors) and
``certification:admin`` see every campaign; a person (``certification:review``) sees the
campaigns in which they review an item, themselves or through a group they belong to; any
other campaign does not exist for them (404).

Audit: ``campaign.create``, ``campaign.launch`` (counts and items digest, see
certification.generation), ``campaign.cancel`` (object ``campaign``);
``campaign.launch_failed`` for a scheduled launch that failed (certification.scheduling).
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import ColumnElement, exists, or_, select, text
from sqlalchemy.orm import Session

from certification.composition import check_composition_scope, generate_composition_items
from certification.generation import generate_items
from certification.models import Campaign, ReviewItem
from certification.schemas_campaigns import CampaignCreate, CampaignFilter
from certification.scoping import SUPPORTED_KINDS, validate_scope
from idgov.audit.service import record, snapshot
from idgov.auth.caller import Caller
from idgov.clock import Clock
from idgov.db.repository import Page, get_or_404, paginate
from idgov.errors import Conflict, FieldError, InvalidInput, NotFound
from idgov.models.application import Application
from idgov.models.assignment import Assignment
from idgov.models.catalog import Entitlement, Role
from idgov.models.identity import Group, GroupMember, Identity
from idgov.types import Actor

READ_ALL = ("certification:read", "certification:admin")
# Serialises launches on PostgreSQL, so two overlapping campaigns cannot both pass the
# overlap check (SQLite has one writer anyway).
_LAUNCH_LOCK = 0x6365727431  # "cert1"

_SCOPE_REFERENCES: tuple[tuple[str, Any], ...] = (
    ("application_ids", Application), ("entitlement_ids", Entitlement), ("role_ids", Role),
    ("identity_ids", Identity), ("assignment_ids", Assignment))


def _unknown_references(session: Session, scope: dict[str, Any]) -> list[FieldError]:
    errors: list[FieldError] = []
    for key, model in _SCOPE_REFERENCES:
        wanted = {uuid.UUID(str(v)) for v in scope.get(key) or ()}
        if not wanted:
            continue
        found = set(session.scalars(select(model.id).where(model.id.in_(wanted))))
        errors.extend(FieldError(f"scope.{key}", f"no such object: {missing}")
                      for missing in sorted(wanted - found, key=str))
    return errors


def check_definition(session: Session, *, kind: str, scope: dict[str, Any],
                     fallbacks: list[Any], fallback_group_id: uuid.UUID | None) -> None:
    """InvalidInput (every problem at once) for an unsupported kind, a malformed scope or
    one naming nothing, or a group fallback without an existing group."""
    errors = [FieldError(path, message) for path, message in validate_scope(scope)]
    if kind == "composition":
        errors.extend(FieldError(path, message) for path, message in
                      check_composition_scope(scope))
    elif kind not in SUPPORTED_KINDS:
        errors.append(FieldError("kind", f"{kind} campaigns are not yet supported"))
    if not errors:
        errors.extend(_unknown_references(session, scope))
    if "group" in fallbacks and fallback_group_id is None:
        errors.append(FieldError("fallback_group_id", "the 'group' fallback needs a group"))
    if fallback_group_id is not None and session.get(Group, fallback_group_id) is None:
        errors.append(FieldError("fallback_group_id", f"no group {fallback_group_id}"))
    if errors:
        raise InvalidInput("the campaign definition is not valid", errors=errors)


def create_campaign(session: Session, *, campaign_in: CampaignCreate, actor: Actor,
                    clock: Clock, trigger: str = "manual",
                    trigger_ref: str | None = None,
                    schedule_id: uuid.UUID | None = None) -> Campaign:
    """A draft campaign; nothing is generated before :func:`launch`. InvalidInput (422)
    for a bad definition (see :func:`check_definition`), a deadline not after the start, or
    ``launch="scheduled"`` without a start in the future. A scheduled campaign gets trigger
    ``schedule`` and is launched by :func:`certification.scheduling.launch_due`."""
    now = clock.now()
    scope = campaign_in.scope.as_document()
    fallbacks = list(campaign_in.fallbacks)
    check_definition(session, kind=campaign_in.kind, scope=scope, fallbacks=fallbacks,
                     fallback_group_id=campaign_in.fallback_group_id)
    starts_at = campaign_in.starts_at or now
    if campaign_in.launch == "scheduled":
        if campaign_in.starts_at is None or campaign_in.starts_at <= now:
            raise InvalidInput("a scheduled campaign needs a start in the future",
                               errors=[FieldError("starts_at",
                                                  "must be in the future for launch=scheduled")])
        trigger = "schedule"
    if campaign_in.deadline_at <= starts_at:
        raise InvalidInput("the deadline must come after the start",
                           errors=[FieldError("deadline_at", "must be after starts_at")])
    campaign = Campaign(
        id=uuid.uuid4(), name=campaign_in.name, description=campaign_in.description,
        kind=campaign_in.kind, state="draft", scope=scope, fallbacks=fallbacks,
        fallback_group_id=campaign_in.fallback_group_id, starts_at=starts_at,
        deadline_at=campaign_in.deadline_at, reminder_days=sorted(set(campaign_in.reminder_days),
                                                                  reverse=True),
        escalate_after_days=campaign_in.escalate_after_days,
        deadline_action=campaign_in.deadline_action, trigger=trigger, trigger_ref=trigger_ref,
        schedule_id=schedule_id, created_by=actor.label, counts={}, created_at=now, updated_at=now)
    session.add(campaign)
    session.flush()
    record(session, actor=actor, action="campaign.create", object_type="campaign",
           object_id=campaign.id, clock=clock, after=snapshot(campaign))
    return campaign


def _locked(session: Session, campaign_id: uuid.UUID) -> Campaign:
    stmt = select(Campaign).where(Campaign.id == campaign_id).with_for_update()
    found = session.scalars(stmt.execution_options(populate_existing=True)).one_or_none()
    if found is None:
        raise NotFound(f"campaign {campaign_id} does not exist")
    return found


def launch(session: Session, *, campaign_id: uuid.UUID, actor: Actor, clock: Clock) -> Campaign:
    """Generate the draft campaign's review items (one per assignment in force in scope)
    and make it active. Conflict (409) when it is not a draft or when its scope takes in
    assignments already under review in another active campaign (nothing is kept);
    InvalidInput (422) for a definition no longer valid or an unsupported kind."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LAUNCH_LOCK})
    campaign = _locked(session, campaign_id)
    if campaign.state != "draft":
        raise Conflict(f"campaign {campaign.id} is {campaign.state}: only a draft is launched")
    check_definition(session, kind=campaign.kind, scope=dict(campaign.scope or {}),
                     fallbacks=list(campaign.fallbacks or []),
                     fallback_group_id=campaign.fallback_group_id)
    before = snapshot(campaign)
    generate = generate_composition_items if campaign.kind == "composition" else generate_items
    generate(session, campaign=campaign, actor=actor, clock=clock)
    campaign.state = "active"
    campaign.updated_at = clock.now()
    session.flush()
    record(session, actor=actor, action="campaign.launch", object_type="campaign",
           object_id=campaign.id, clock=clock, before=before, after=snapshot(campaign),
           context={"items_digest": "sum mod 2**256 of sha256(id|assignment_id|reviewer_id|"
                                    "reviewer_group_id) over the campaign's review items"})
    return campaign


def cancel_campaign(session: Session, *, campaign_id: uuid.UUID, reason: str | None,
                    actor: Actor, clock: Clock) -> Campaign:
    """Cancel a draft or active campaign: its items stay as they are (history), nothing is
    remediated. Conflict (409) for a closed or cancelled campaign."""
    campaign = _locked(session, campaign_id)
    if campaign.state not in ("draft", "active"):
        raise Conflict(f"campaign {campaign.id} is {campaign.state}: it cannot be cancelled")
    before = snapshot(campaign)
    now = clock.now()
    campaign.state = "cancelled"
    campaign.closed_at = now
    campaign.updated_at = now
    session.flush()
    record(session, actor=actor, action="campaign.cancel", object_type="campaign",
           object_id=campaign.id, clock=clock, before=before, after=snapshot(campaign),
           context={"reason": reason} if reason else None)
    return campaign


def _sees_all(caller: Caller | None) -> bool:
    return caller is None or any(caller.can(c) for c in READ_ALL)


def reviews_in(person_id: uuid.UUID) -> ColumnElement[bool]:
    """Campaigns in which ``person_id`` reviews an item (themselves or through a group)."""
    groups = select(GroupMember.group_id).where(GroupMember.identity_id == person_id)
    return exists(select(ReviewItem.id).where(
        ReviewItem.campaign_id == Campaign.id,
        or_(ReviewItem.reviewer_id == person_id, ReviewItem.reviewer_group_id.in_(groups))))


def get_campaign(session: Session, *, campaign_id: uuid.UUID,
                 caller: Caller | None = None) -> Campaign:
    """One campaign (NotFound when unknown, or not visible to ``caller``; None: no rule)."""
    campaign = get_or_404(session, Campaign, campaign_id, what="campaign")
    if _sees_all(caller):
        return campaign
    assert caller is not None
    if caller.identity_id is None or session.scalar(
            select(Campaign.id).where(Campaign.id == campaign_id,
                                      reviews_in(caller.identity_id))) is None:
        raise NotFound(f"campaign {campaign_id} does not exist")
    return campaign


def list_campaigns(session: Session, *, caller: Caller | None,
                   filters: CampaignFilter) -> Page[Campaign]:
    """Campaigns in id order, one page at a time, as the caller may see them."""
    stmt = select(Campaign)
    if filters.state is not None:
        stmt = stmt.where(Campaign.state == filters.state)
    if filters.kind is not None:
        stmt = stmt.where(Campaign.kind == filters.kind)
    if not _sees_all(caller):
        assert caller is not None
        if caller.identity_id is None:
            return Page(items=[], next_cursor=None)
        stmt = stmt.where(reviews_in(caller.identity_id))
    return paginate(session, stmt, Campaign, limit=filters.limit, cursor=filters.cursor)
