"""The SQL of reviewing: the row rule, the page's filters, the page in one query (names of
the person, the access and the application joined in), keyset cursors, progress counts.

A role composition item (composition campaigns) has no person: its page groups by the
role whose composition it is, its ``access_name`` is what the link includes (an
entitlement, or the included role), and nobody's own access rule cannot exclude it."""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVarTuple

from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    exists,
    false,
    func,
    or_,
    select,
    union_all,
)
from sqlalchemy.orm import Session, aliased, defer

from certification.models import ReviewerSignoff, ReviewItem
from certification.schemas_review import ItemSelection
from idgov.errors import FieldError, InvalidInput
from idgov.models.application import Application
from idgov.models.catalog import Entitlement, Role, RoleInclusion
from idgov.models.identity import GroupMember, Identity
from idgov.policy import RISK_ORDER

Ts = TypeVarTuple("Ts")

DEFAULT_LIMIT = 50
MAX_LIMIT = 500
# The role a composition item's inclusion link includes.
Included = aliased(Role, name="included_role")
# The items of a person's row rule, searched apart (see :func:`my_items`).
_Mine = aliased(ReviewItem, name="mine")


@dataclass(frozen=True)
class ItemView:
    """One item with the names a reviewer reads, and whether its decision is final.

    Composition items: no ``identity_name``; ``role_name`` is the role whose composition
    is reviewed, ``access_name`` what the link includes (``included_role_id`` for a role)."""

    item: ReviewItem
    identity_name: str | None
    access_name: str
    application_name: str | None
    final: bool
    role_name: str | None = None
    included_role_id: uuid.UUID | None = None

    @property
    def described(self) -> str:
        """The item in words, for messages: whose access to what, or what a role includes."""
        if self.item.assignment_id is None:
            return f"what the role {self.role_name} includes: {self.access_name}"
        return f"the access of {self.identity_name} to {self.access_name}"


def my_items(identity_id: uuid.UUID | None,
             campaign_id: uuid.UUID | None = None) -> ColumnElement[bool]:
    """A person's row rule: items they review, and their groups' items no member has
    taken yet; never items about their own access.

    With ``campaign_id`` the rule also restricts to that campaign, and should then be given
    INSTEAD of a ``campaign_id ==`` clause: it is an ``IN`` over two index searches of
    (campaign, reviewer), the person's items and the campaign's items without reviewer that
    belong to one of their groups, which SQLite then drives the query from. Written as one
    ``OR`` (the form without ``campaign_id``), or next to a plain ``campaign_id =`` term,
    SQLite uses only the campaign part of the index and reads every item of the campaign (a
    million for a large one) to find a reviewer's few hundred."""
    if identity_id is None:
        return false()
    groups = select(GroupMember.group_id).where(GroupMember.identity_id == identity_id)
    not_own = ReviewItem.identity_id.is_distinct_from(identity_id)
    if campaign_id is None:
        return and_(or_(ReviewItem.reviewer_id == identity_id,
                        and_(ReviewItem.reviewer_id.is_(None),
                             ReviewItem.reviewer_group_id.in_(groups))), not_own)
    mine = _Mine
    reviewed = union_all(
        select(mine.id).where(mine.campaign_id == campaign_id, mine.reviewer_id == identity_id),
        select(mine.id).where(mine.campaign_id == campaign_id, mine.reviewer_id.is_(None),
                              mine.reviewer_group_id.in_(groups)))
    return and_(ReviewItem.id.in_(reviewed), not_own)


def signed_off() -> ColumnElement[bool]:
    """The item's reviewer has signed off in its campaign."""
    return exists().where(ReviewerSignoff.campaign_id == ReviewItem.campaign_id,
                          ReviewerSignoff.reviewer_id == ReviewItem.reviewer_id)


def open_items() -> ColumnElement[bool]:
    """Items whose decision may still change: not signed off, nothing applied yet."""
    return and_(~signed_off(), ReviewItem.remediation == "none")


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def selection_clauses(selection: ItemSelection) -> list[ColumnElement[bool]]:
    """The filters of ``selection`` over ReviewItem (``q`` needs the names: see
    :func:`names_joined`)."""
    clauses: list[ColumnElement[bool]] = []
    if selection.decision is not None:
        clauses.append(ReviewItem.decision == selection.decision)
    if selection.risk is not None:
        clauses.append(ReviewItem.risk.in_(RISK_ORDER[RISK_ORDER.index(selection.risk):]))
    for name in ("application_id", "identity_id", "reviewer_id"):
        value = getattr(selection, name)
        if value is not None:
            clauses.append(getattr(ReviewItem, name) == value)
    if selection.sod is not None:
        clauses.append(ReviewItem.sod_conflict.is_(selection.sod))
    if selection.privileged is not None:
        clauses.append(ReviewItem.privileged.is_(selection.privileged))
    if selection.q:
        pattern = _like(selection.q)
        clauses.append(or_(Identity.display_name.ilike(pattern, escape="\\"),
                           Role.name.ilike(pattern, escape="\\"),
                           Entitlement.name.ilike(pattern, escape="\\"),
                           Included.name.ilike(pattern, escape="\\")))
    return clauses


def names_joined(stmt: Select[*Ts]) -> Select[*Ts]:
    """Join the person, the role or entitlement, the included role (composition items) and
    the application onto ReviewItem."""
    return (stmt.outerjoin(Identity, Identity.id == ReviewItem.identity_id)
            .outerjoin(Role, Role.id == ReviewItem.role_id)
            .outerjoin(Entitlement, Entitlement.id == ReviewItem.entitlement_id)
            .outerjoin(RoleInclusion, RoleInclusion.id == ReviewItem.role_inclusion_id)
            .outerjoin(Included, Included.id == RoleInclusion.child_role_id)
            .outerjoin(Application, Application.id == ReviewItem.application_id))


def _view_select() -> Select[*tuple[Any, ...]]:
    final = or_(signed_off(), ReviewItem.remediation != "none").label("final")
    stmt = select(ReviewItem, Identity.display_name, Role.name, Entitlement.name,
                  Application.name, Included.id, Included.name, final)
    return names_joined(stmt)


def _view(row: Any) -> ItemView:
    (item, identity_name, role_name, entitlement_name, application_name, included_id,
     included_name, final) = row
    if item.assignment_id is None:  # a composition link: role_name includes the access
        return ItemView(item=item, identity_name=None,
                        access_name=entitlement_name or included_name or "",
                        application_name=application_name, final=bool(final),
                        role_name=role_name, included_role_id=included_id)
    return ItemView(item=item, identity_name=identity_name,
                    access_name=role_name or entitlement_name or "",
                    application_name=application_name, final=bool(final))


def view_of(session: Session, item_id: uuid.UUID) -> ItemView | None:
    """One item with its names (context loaded), or None."""
    row = session.execute(_view_select().where(ReviewItem.id == item_id)).one_or_none()
    return None if row is None else _view(row)


def _encode(name: str, group_id: uuid.UUID, item_id: uuid.UUID) -> str:
    raw = json.dumps({"n": name, "i": str(group_id), "k": str(item_id)}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode(cursor: str) -> tuple[str, uuid.UUID, uuid.UUID]:
    try:
        data = json.loads(base64.urlsafe_b64decode((cursor + "=" * (-len(cursor) % 4))
                                                   .encode()))
        return str(data["n"]), uuid.UUID(data["i"]), uuid.UUID(data["k"])
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:
        raise InvalidInput("the cursor is not one this service issued",
                           errors=[FieldError("cursor", "malformed cursor")]) from exc


def page(session: Session, *, clauses: Sequence[ColumnElement[bool]], limit: int | None,
         cursor: str | None, search: bool = False,
         by_role: bool = False) -> tuple[list[ItemView], str | None]:
    """One page grouped by person (display name, then identity) — ``by_role``: by the role
    whose composition is reviewed (name, then role), for composition campaigns —, then by
    item, in one query: the page's keys are sorted narrow (ids and the name) in a
    subquery, then only its rows get their names joined. ``search``: the clauses use the
    access' names (``q``). The keyset cursor carries the last row's three keys."""
    size = DEFAULT_LIMIT if limit is None else limit
    if not 1 <= size <= MAX_LIMIT:
        raise InvalidInput(f"limit must be between 1 and {MAX_LIMIT}",
                           errors=[FieldError("limit", f"must be between 1 and {MAX_LIMIT}")])
    name: Any = Role.name if by_role else Identity.display_name
    group: Any = ReviewItem.role_id if by_role else ReviewItem.identity_id
    keys = select(ReviewItem.id.label("id"), name.label("name"), group.label("group_id"))
    if search:
        keys = names_joined(keys)
    elif by_role:
        keys = keys.join(Role, Role.id == ReviewItem.role_id)
    else:
        keys = keys.join(Identity, Identity.id == ReviewItem.identity_id)
    keys = keys.where(*clauses)
    if cursor:
        last_name, last_group, last_id = _decode(cursor)
        keys = keys.where(or_(
            name > last_name,
            and_(name == last_name, group > last_group),
            and_(name == last_name, group == last_group, ReviewItem.id > last_id)))
    chosen = keys.order_by(name, group, ReviewItem.id).limit(size + 1).subquery("chosen")
    stmt = (_view_select().add_columns(chosen.c.name, chosen.c.group_id)
            .options(defer(ReviewItem.context))
            .join(chosen, chosen.c.id == ReviewItem.id)
            .order_by(chosen.c.name, chosen.c.group_id, chosen.c.id))
    rows = session.execute(stmt).all()
    if len(rows) <= size:
        return [_view(row[:-2]) for row in rows], None
    last = rows[size - 1]
    return ([_view(row[:-2]) for row in rows[:size]],
            _encode(last[-2], last[-1], last[0].id))


def selected_rows(session: Session, *, clauses: Sequence[ColumnElement[bool]],
                  lock: bool = False) -> list[tuple[uuid.UUID, str, uuid.UUID | None, bool]]:
    """(id, decision, reviewer_id, final) of the items matching ``clauses`` (names joined
    for ``q``), locked on PostgreSQL when ``lock``."""
    final = or_(signed_off(), ReviewItem.remediation != "none")
    stmt = names_joined(select(ReviewItem.id, ReviewItem.decision, ReviewItem.reviewer_id,
                               final)).where(*clauses)
    if lock:
        stmt = stmt.with_for_update(of=ReviewItem)
    return [(row[0], row[1], row[2], bool(row[3])) for row in session.execute(stmt)]


def count(session: Session, *clauses: ColumnElement[bool]) -> int:
    return session.scalar(select(func.count()).select_from(ReviewItem).where(*clauses)) or 0


def counts_by_reviewer(session: Session, campaign_id: uuid.UUID,
                       *clauses: ColumnElement[bool]) -> list[tuple[Any, ...]]:
    """(reviewer_id, reviewer_group_id, decision, count) of a campaign's items: all of them,
    or those of ``clauses``, a person's row rule (:func:`my_items` with ``campaign_id``,
    which restricts to the campaign by itself)."""
    where = list(clauses) or [ReviewItem.campaign_id == campaign_id]
    stmt = (select(ReviewItem.reviewer_id, ReviewItem.reviewer_group_id, ReviewItem.decision,
                   func.count())
            .where(*where)
            .group_by(ReviewItem.reviewer_id, ReviewItem.reviewer_group_id,
                      ReviewItem.decision))
    return [tuple(row) for row in session.execute(stmt)]


def signoffs(session: Session, campaign_id: uuid.UUID) -> dict[uuid.UUID, datetime]:
    stmt = select(ReviewerSignoff.reviewer_id, ReviewerSignoff.signed_off_at).where(
        ReviewerSignoff.campaign_id == campaign_id)
    return {row[0]: row[1] for row in session.execute(stmt)}


def names(session: Session, identity_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, str]:
    if not identity_ids:
        return {}
    stmt = select(Identity.id, Identity.display_name).where(Identity.id.in_(identity_ids))
    return {row[0]: row[1] for row in session.execute(stmt)}
