"""Bulk decisions: one decision over many items, set-based (one UPDATE per chunk of ids,
one audit event per item written with ``record_many``)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, func, select, update
from sqlalchemy.orm import Session

from certification import review_repository as repo
from certification.models import Campaign, ReviewItem
from certification.review_rules import (
    ADMIN,
    REVIEW,
    campaign_or_404,
    clean,
    require_active,
    require_comment,
    require_decision,
)
from certification.schemas_review import ItemSelection
from idgov.audit.service import EventSpec, record_many
from idgov.auth.caller import Caller
from idgov.clock import Clock
from idgov.errors import Conflict, Forbidden, NotFound

CHUNK = 5000
Row = tuple[uuid.UUID, str, uuid.UUID | None, bool]


@dataclass(frozen=True)
class BulkSelection:
    """Which items a bulk decision is about: ``item_ids``, or those matching ``filter``
    (every open item of the caller's when both are None)."""

    item_ids: Sequence[uuid.UUID] | None = None
    filter: ItemSelection | None = None


def _base(caller: Caller, campaign_id: uuid.UUID) -> list[ColumnElement[bool]]:
    if not caller.can(ADMIN):  # the row rule restricts to the campaign itself
        return [repo.my_items(caller.identity_id, campaign_id)]
    base: list[ColumnElement[bool]] = [ReviewItem.campaign_id == campaign_id]
    if caller.identity_id is not None:
        base.append(ReviewItem.identity_id.is_distinct_from(caller.identity_id))
    return base


def _listed(session: Session, base: list[ColumnElement[bool]],
            item_ids: Sequence[uuid.UUID]) -> list[Row]:
    wanted = list(dict.fromkeys(item_ids))
    rows: list[Row] = []
    for start in range(0, len(wanted), CHUNK):
        chunk = wanted[start:start + CHUNK]
        rows += repo.selected_rows(session, clauses=[*base, ReviewItem.id.in_(chunk)],
                                   lock=True)
    found = {row[0] for row in rows}
    missing = [str(i) for i in wanted if i not in found]
    if missing:
        raise NotFound(f"{len(missing)} of the items do not exist in this campaign",
                       item_ids=missing[:20])
    final = [str(row[0]) for row in rows if row[3]]
    if final:
        raise Conflict(f"{len(final)} of the items are final: their reviewer signed off",
                       item_ids=final[:20])
    return rows


def bulk_decide(session: Session, *, campaign_id: uuid.UUID, selection: BulkSelection,
                decision: str, comment: str | None, caller: Caller, clock: Clock) -> int:
    """One decision over the caller's open items of an active campaign (any open item for
    an administrator): those listed, or those matching the filter. Listed items the caller
    may not decide: 404; listed items already final: 409; campaign not active: 409; a
    mandatory comment missing for any selected item: 422 — in each case nothing changes.
    A group member takes the group items they decide. Returns how many items were
    decided."""
    require_decision(decision)
    if not caller.can(ADMIN) and not caller.can(REVIEW):
        raise Forbidden("only reviewers and administrators decide")
    campaign = campaign_or_404(session, campaign_id)
    require_active(campaign)
    base = _base(caller, campaign_id)
    if selection.item_ids is not None:
        rows = _listed(session, base, selection.item_ids)
    else:
        chosen = repo.selection_clauses(selection.filter or ItemSelection())
        rows = repo.selected_rows(session, clauses=[*base, *chosen, repo.open_items()],
                                  lock=True)
    text = clean(comment)
    if not text and decision != "pending":
        privileged, sod = _flag_counts(session, [row[0] for row in rows])
        require_comment(decision, text, privileged=privileged, sod=sod)
    return _apply(session, rows, campaign=campaign, decision=decision, comment=text,
                  caller=caller, clock=clock)


def _flag_counts(session: Session, ids: Sequence[uuid.UUID]) -> tuple[int, int]:
    privileged = sod = 0
    for start in range(0, len(ids), CHUNK):
        row = session.execute(select(
            func.count().filter(ReviewItem.privileged.is_(True)),
            func.count().filter(ReviewItem.sod_conflict.is_(True)))
            .where(ReviewItem.id.in_(list(ids[start:start + CHUNK])))).one()
        privileged, sod = privileged + (row[0] or 0), sod + (row[1] or 0)
    return privileged, sod


def _apply(session: Session, rows: Sequence[Row], *, campaign: Campaign, decision: str,
           comment: str | None, caller: Caller, clock: Clock) -> int:
    decided = decision != "pending"
    at = clock.now() if decided else None
    by = caller.actor.label[:400] if decided else None
    values: dict[str, Any] = {"decision": decision, "decided_at": at, "decided_by": by,
                              "comment": comment}
    me = caller.identity_id
    claim = me is not None and not caller.can(ADMIN)
    if claim:
        values["reviewer_id"] = func.coalesce(ReviewItem.reviewer_id, me)
    after = {"decision": decision, "decided_at": at, "decided_by": by, "comment": comment}
    context = {"campaign_id": campaign.id, "bulk": True,
               "administrator_override": caller.can(ADMIN)}
    for start in range(0, len(rows), CHUNK):
        chunk = rows[start:start + CHUNK]
        session.execute(update(ReviewItem).where(ReviewItem.id.in_([r[0] for r in chunk]))
                        .values(**values).execution_options(synchronize_session=False))
        record_many(session, (EventSpec(
            action="review_item.decide", object_type="review_item", object_id=item_id,
            before={"decision": old, "reviewer_id": reviewer},
            after={**after, "reviewer_id": reviewer if reviewer or not claim else me},
            context=context) for item_id, old, reviewer, _final in chunk),
            actor=caller.actor, clock=clock)
    # The ORM rows in this session (if any) predate the UPDATE.
    session.expire_all()
    return len(rows)
