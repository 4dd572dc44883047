"""What the micro-certification triggers share, and the two simplest of them.

A trigger finds :class:`Candidate` s: an assignment to review, the event that calls for it
(``key``, stored as the item's ``trigger_key``: one item per key ever), the reviewer chosen
and what the reviewer should know. :mod:`certification.micro` turns candidates into
campaigns. Triggers here:

- **mover** (:func:`mover_candidates`): open review flags of a mover's requested access
  (``idgov.lifecycle.review_flags``), for the flag's reviewer; key ``mover:<flag id>``.
  Items made before keys existed (no ``trigger_key``) still cover their flag: a ``mover``
  item of the flag's assignment created at or after the flag.
- **aggregation** (:func:`aggregation_candidates`): assignments in force with source
  ``aggregation`` (found on a target, not granted through idgov) of active people, never
  certified, for the holder's manager, else the application's owner; key
  ``aggregation:<assignment id>``. An aggregated assignment certified in any campaign is
  confirmed already and left alone.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import and_, exists, select
from sqlalchemy.orm import Session

from certification.models import Campaign, ReviewItem
from idgov.assignments.repository import in_force
from idgov.models.application import Application
from idgov.models.assignment import Assignment
from idgov.models.catalog import Entitlement
from idgov.models.hr import ReviewFlag
from idgov.models.identity import Identity

T = TypeVar("T")
IN_CHUNK = 1_000


def chunked(items: Iterable[T], size: int = IN_CHUNK) -> Iterator[list[T]]:
    """``items`` in lists of at most ``size`` (for ``IN`` lists of bounded length)."""
    batch: list[T] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def utc_text(value: datetime) -> str:
    """ISO 8601 in UTC, as trigger keys spell instants (a naive value is taken as UTC)."""
    aware = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return aware.isoformat()


@dataclass(frozen=True)
class Candidate:
    """One assignment a trigger wants reviewed, and why."""

    assignment_id: uuid.UUID
    identity_id: uuid.UUID
    key: str                         # the item's trigger_key: one item per key, ever
    ref: str                         # what the campaign's trigger_ref names (a flag, ...)
    reviewer_id: uuid.UUID | None    # None: nobody usable (left to administrators)
    reviewer_rule: str | None        # "manager", "approver", "application_owner", ...
    context: Mapping[str, Any] = field(default_factory=dict)
    sod_conflict: bool = False


class People:
    """Managers and states of the people a run looks at, loaded in bulk, only once each."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.manager: dict[uuid.UUID, uuid.UUID | None] = {}
        self.active: set[uuid.UUID] = set()
        self._loaded: set[uuid.UUID] = set()

    def load(self, ids: Iterable[uuid.UUID | None]) -> None:
        missing = sorted({i for i in ids if i is not None} - self._loaded, key=str)
        for batch in chunked(missing):
            for identity_id, manager_id, state in self.session.execute(
                    select(Identity.id, Identity.manager_id, Identity.lifecycle_state)
                    .where(Identity.id.in_(batch))):
                self.manager[identity_id] = manager_id
                if state == "active":
                    self.active.add(identity_id)
            self._loaded.update(batch)

    def prepare(self, holders: Iterable[uuid.UUID],
                others: Iterable[uuid.UUID | None] = ()) -> None:
        """Load the holders, their managers and ``others`` (owners, approvers)."""
        holders = list(holders)
        self.load(holders)
        self.load([*(self.manager.get(h) for h in holders), *others])

    def choose(self, holder: uuid.UUID, chain: Sequence[tuple[str, uuid.UUID | None]]
               ) -> tuple[uuid.UUID | None, str | None]:
        """The first candidate of ``chain`` (rule, person) who is someone, active, and not
        the holder (nobody reviews their own access); (None, None) when there is none.
        The people must have been loaded (:meth:`prepare`)."""
        for rule, candidate in chain:
            if candidate is not None and candidate != holder and candidate in self.active:
                return candidate, rule
        return None, None


def application_owners(session: Session) -> dict[uuid.UUID, uuid.UUID | None]:
    """Every application's owner (a small table, read whole)."""
    return {a: o for a, o in session.execute(select(Application.id, Application.owner_id))}


def mover_candidates(session: Session) -> list[Candidate]:
    """Open review flags with a reviewer (see the module doc), oldest first."""
    legacy = exists().where(
        ReviewItem.assignment_id == ReviewFlag.assignment_id,
        ReviewItem.trigger_key.is_(None),
        ReviewItem.created_at >= ReviewFlag.created_at,
        ReviewItem.campaign_id.in_(select(Campaign.id).where(
            and_(Campaign.kind == "micro", Campaign.trigger == "mover"))))
    flags = session.scalars(select(ReviewFlag).where(
        ReviewFlag.state == "open", ReviewFlag.reviewer_id.is_not(None), ~legacy)
        .order_by(ReviewFlag.created_at, ReviewFlag.id))
    return [Candidate(assignment_id=f.assignment_id, identity_id=f.identity_id,
                      key=f"mover:{f.id}", ref=str(f.change_id or f.id),
                      reviewer_id=f.reviewer_id, reviewer_rule="review_flag",
                      context={"review_flag_id": str(f.id), "reason": f.reason,
                               "change_id": str(f.change_id) if f.change_id else None})
            for f in flags]


def aggregation_candidates(session: Session, *, now: datetime,
                           people: People) -> list[Candidate]:
    """Aggregated assignments in force, never certified, of active people, that no
    ``aggregation`` item covers yet (see the module doc)."""
    covered = exists().where(ReviewItem.assignment_id == Assignment.id,
                             ReviewItem.trigger_key.like("aggregation:%"))
    rows = list(session.execute(
        select(Assignment.id, Assignment.identity_id, Entitlement.application_id)
        .join(Entitlement, Entitlement.id == Assignment.entitlement_id)
        .join(Identity, Identity.id == Assignment.identity_id)
        .where(in_force(now), Assignment.source == "aggregation",
               Assignment.last_certified_at.is_(None), Identity.lifecycle_state == "active",
               ~covered)
        .order_by(Assignment.valid_from, Assignment.id)))
    owners = application_owners(session)
    people.prepare((r.identity_id for r in rows), owners.values())
    found: list[Candidate] = []
    for assignment_id, identity_id, application_id in rows:
        reviewer, rule = people.choose(identity_id, (
            ("manager", people.manager.get(identity_id)),
            ("application_owner", owners.get(application_id))))
        found.append(Candidate(assignment_id=assignment_id, identity_id=identity_id,
                               key=f"aggregation:{assignment_id}", ref=str(assignment_id),
                               reviewer_id=reviewer, reviewer_rule=rule))
    return found
