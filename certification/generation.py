"""Generation: one review item per assignment in force in a campaign's scope, in bulk.

The assignments in force at the launch instant are streamed in chunks (``yield_per``), ids
as the database stores them (text, no UUID object per row). For each chunk the scope is
applied (certification.scoping: in SQL where a filter is a short list, else in memory over
facts memoised per role or entitlement), the context's look-ups are loaded with a few
set-based queries (certification.context), then the rows are built in memory
(certification.item_rows: reviewer resolved once per person, the context JSON joined from
parts kept per role or entitlement, per peer group, per grant instant) and written by
certification.writer (COPY on PostgreSQL, executemany on SQLite) on a second thread while
the next chunk is built. A million items is a few hundred queries; memory stays flat (two
chunks, plus maps of people and catalog).

The items are the snapshot: later grants are not added and later revocations do not remove
items (the reviewer sees what stood at launch).

Audit: the launch is one ``campaign.launch`` event (certification.campaigns) whose ``after``
carries the counts and ``items_digest``: the sum modulo 2**256 of SHA-256 over each item's
``id|assignment_id|reviewer_id|reviewer_group_id`` (the item id as 32 hex digits, the
others hyphenated, ``None`` for an empty one), an order-free digest of the item set that
can be recomputed from the stored items, so the signed trail pins what was generated
without one event per item; the decisions on items are audited one by one by the review module.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Select, Text, cast, or_, select, type_coerce
from sqlalchemy.orm import Session
from sqlalchemy.types import NullType

from certification.context import Held, PeerTable, grants, last_sign_ins, sod_conflicts
from certification.generation_facts import Catalog, People
from certification.item_rows import FIELDS, AssignmentRow, Lookups, RowBuilder, Tally
from certification.models import Campaign, ReviewItem
from certification.scoping import SUPPORTED_KINDS, ReviewerRule, Scope, parse_scope
from certification.writer import ItemIds, ItemWriter, id_text, sqlite_cache
from idgov.assignments.repository import in_force
from idgov.catalog.snapshot import current_snapshot
from idgov.clock import Clock
from idgov.errors import Conflict, FieldError, InvalidInput
from idgov.models.assignment import Assignment
from idgov.models.identity import Identity
from idgov.types import Actor

CHUNK = 10_000
# A scope list up to this long becomes an SQL ``IN``; a longer one is applied in memory.
IN_LIST_MAX = 1_000

__all__ = ["FIELDS", "Tally", "generate_items", "overlapping_campaign"]


def _stream(scope: Scope, at: datetime, wanted: tuple[set[uuid.UUID], set[uuid.UUID]] | None,
            postgres: bool) -> Select[Any]:
    def text(column: Any) -> Any:  # the stored id as text: hyphenated, or SQLite's 32 hex
        return cast(column, Text) if postgres else type_coerce(column, NullType())

    def raw(column: Any) -> Any:  # the driver's value, converted once per distinct value
        return type_coerce(column, NullType())

    stmt: Select[Any] = select(
        text(Assignment.id), text(Assignment.identity_id), text(Assignment.role_id),
        text(Assignment.entitlement_id), Assignment.source, text(Assignment.request_line_id),
        raw(Assignment.valid_from), Assignment.granted_by, raw(Assignment.last_certified_at),
        Assignment.last_certified_by).where(in_force(at))
    if wanted is not None and len(wanted[0]) + len(wanted[1]) <= IN_LIST_MAX:
        stmt = stmt.where(or_(Assignment.role_id.in_(wanted[0]),
                              Assignment.entitlement_id.in_(wanted[1])))
    if scope.sources:
        stmt = stmt.where(Assignment.source.in_(sorted(scope.sources)))
    if scope.assignment_ids and len(scope.assignment_ids) <= IN_LIST_MAX:
        stmt = stmt.where(Assignment.id.in_(scope.assignment_ids))
    if scope.identity_ids and len(scope.identity_ids) <= IN_LIST_MAX:
        stmt = stmt.where(Assignment.identity_id.in_(scope.identity_ids))
    if scope.departments:
        stmt = stmt.where(Assignment.identity_id.in_(
            select(Identity.id).where(Identity.department.in_(sorted(scope.departments)))))
    return stmt


def overlapping_campaign(session: Session, campaign_id: uuid.UUID,
                         assignment_ids: Sequence[uuid.UUID], *,
                         ignore_micro: bool = False) -> Campaign | None:
    """An active campaign (other than ``campaign_id``) with an item of these assignments.
    ``ignore_micro``: micro campaigns (a few items opened by an event, for two weeks) do not
    count, so that they never block a periodic campaign over the same people."""
    stmt = (select(ReviewItem.campaign_id)
            .join(Campaign, Campaign.id == ReviewItem.campaign_id)
            .where(ReviewItem.assignment_id.in_(assignment_ids), Campaign.state == "active",
                   Campaign.id != campaign_id))
    if ignore_micro:
        stmt = stmt.where(Campaign.kind != "micro")
    found = session.scalars(stmt.limit(1)).first()
    return None if found is None else session.get(Campaign, found)


class _HoldingFilter:
    """The scope's filters on who holds an assignment and how (scoping.holding_in_scope),
    over stored ids; None when the scope has none."""

    def __init__(self, scope: Scope, people: People, stored: Callable[[uuid.UUID], str]):
        self.assignments = frozenset(map(stored, scope.assignment_ids))
        self.identities = frozenset(map(stored, scope.identity_ids))
        self.departments, self.sources = scope.departments, scope.sources
        self.department_of = people.department.get

    @classmethod
    def of(cls, scope: Scope, people: People, stored: Callable[[uuid.UUID], str]
           ) -> _HoldingFilter | None:
        if scope.assignment_ids or scope.identity_ids or scope.departments or scope.sources:
            return cls(scope, people, stored)
        return None

    def __call__(self, row: AssignmentRow) -> bool:
        return ((not self.assignments or row[0] in self.assignments)
                and (not self.identities or row[1] in self.identities)
                and (not self.departments or self.department_of(row[1]) in self.departments)
                and (not self.sources or row[4] in self.sources))


def generate_items(session: Session, *, campaign: Campaign, actor: Actor, clock: Clock,
                   chunk: int = CHUNK) -> int:
    """Write one review item per assignment in force now in ``campaign``'s scope; returns how
    many. Sets ``campaign.counts`` and ``generated_at``; the caller changes the state and
    audits. ``Conflict`` (nothing kept: the unit of work rolls back) when an assignment is
    already an item of another active campaign; ``InvalidInput`` for an unsupported kind.
    ``chunk``: assignments per round of look-ups and writing (memory against round trips)."""
    if campaign.kind not in SUPPORTED_KINDS:
        raise InvalidInput(f"{campaign.kind} campaigns are not yet supported",
                           errors=[FieldError("kind", "not yet supported")])
    now = clock.now()
    dialect = session.get_bind().dialect
    postgres = dialect.name == "postgresql"
    stored = id_text(postgres)
    snapshot = current_snapshot(session, at=now)
    scope = parse_scope(campaign.scope, kind=campaign.kind)
    catalog = Catalog(session, snapshot, scope, stored)
    people = People.load(session)
    wanted = catalog.wanted()
    small = wanted is not None and len(wanted[0]) + len(wanted[1]) <= IN_LIST_MAX
    peers = PeerTable.load(session, at=now, group_of=people.group_of, groups=people.groups,
                           active=people.active, role_ids=wanted[0] if small and wanted else None,
                           entitlement_ids=wanted[1] if small and wanted else None,
                           stored=stored)
    others_active = session.scalar(select(Campaign.id).where(
        Campaign.state == "active", Campaign.id != campaign.id).limit(1)) is not None
    instant = Assignment.__table__.c.valid_from.type.dialect_impl(dialect).result_processor(
        dialect, None) or (lambda value: value)
    group = campaign.fallback_group_id
    builder = RowBuilder(
        catalog=catalog, people=people, peers=peers, postgres=postgres, instant=instant,
        rule=ReviewerRule.of(campaign.kind, campaign.fallbacks or [],
                             stored(group) if group else None),
        ids=ItemIds(int(now.timestamp() * 1000)))
    with sqlite_cache(session), ItemWriter(session, fields=FIELDS, constant={
            "campaign_id": campaign.id, "decision": "pending", "remediation": "none",
            "created_at": now}) as writer:
        _generate(session, campaign, _stream(scope, now, wanted, postgres), catalog,
                  _HoldingFilter.of(scope, people, stored), builder, writer, now,
                  others_active, chunk)
    campaign.counts = builder.tally.as_dict()
    campaign.generated_at = now
    return builder.tally.items


def _generate(session: Session, campaign: Campaign, stream: Select[Any], catalog: Catalog,
              holding: _HoldingFilter | None, builder: RowBuilder, writer: ItemWriter,
              now: datetime, others_active: bool, chunk: int) -> None:
    """Stream, look up, build, write; the writer stores one chunk while the next is built,
    so the connection is used here only between ``writer.wait()`` and ``writer.submit()``."""
    plan = catalog.plan
    result = session.connection().execute(stream.execution_options(yield_per=chunk))
    try:
        built: list[tuple[Any, ...]] = []
        for part in result.partitions():
            rows: list[AssignmentRow] = [r for r in part if plan(r[2], r[3]).in_scope]
            if holding is not None:
                rows = [r for r in rows if holding(r)]
            if rows and others_active:
                other = overlapping_campaign(session, campaign.id,
                                             [uuid.UUID(r[0]) for r in rows],
                                             ignore_micro=campaign.kind != "micro")
                if other is not None:
                    raise Conflict(f"assignments in this scope are already under review in "
                                   f"the active campaign '{other.name}' ({other.id})",
                                   campaign_id=str(other.id))
            found = _lookups(session, builder, rows, now) if rows else None
            writer.submit(built)  # the previous chunk, stored while this one is built
            built = builder.items(rows, found) if found is not None else []
            writer.wait()
        writer.submit(built)
        writer.wait()
    finally:
        result.close()


def _lookups(session: Session, builder: RowBuilder, rows: Sequence[AssignmentRow],
             now: datetime) -> Lookups:
    """The chunk's request lines, SoD conflicts and last sign-ins, by stored ids."""
    catalog, stored = builder.catalog, builder.catalog.stored
    lines = {r[5] for r in rows if r[5] is not None}
    requests = {stored(k): v for k, v in grants(
        session, {uuid.UUID(line) for line in lines}).items()} if lines else {}
    held = []
    for a_id, identity, role, ent, *_rest in rows:
        facts = catalog.plan(role, ent).facts
        held.append(Held(a_id, identity, facts.id if role else None,
                         facts.id if ent else None))
    sod = sod_conflicts(session, catalog.snapshot, held, at=now, stored=stored)
    apps: dict[str, set[str]] = {}
    for r in rows:
        app = catalog.plan(r[2], r[3]).application
        if app is not None:
            apps.setdefault(app, set()).add(r[1])
    signed_in = last_sign_ins(session, set().union(*apps.values()) if apps else set(),
                              set(apps), stored=stored) if apps else {}
    return Lookups(requests, sod, signed_in)
