"""Generation: one review item per assignment in force in a campaign's scope, in bulk.

The assignments in force at the launch instant are streamed in chunks (``yield_per``); for
each chunk the scope is applied (certification.scoping: in SQL where a filter is a short
list, else in memory over facts memoised per role or entitlement), the reviewer resolved
from maps loaded once (everyone's manager and state, the owners of roles, entitlements and
applications), the context added from a few set-based look-ups per chunk
(certification.context), and the items written with multi-row inserts. A million items is
a few hundred queries; memory stays flat (one chunk, plus maps of people and catalog).

The items are the snapshot: later grants are not added and later revocations do not remove
items (the reviewer sees what stood at launch).

Audit: the launch is one ``campaign.launch`` event (certification.campaigns) whose ``after``
carries the counts and ``items_digest``: the sum modulo 2**256 of SHA-256 over each item's
``id|assignment_id|reviewer_id|reviewer_group_id`` (an order-free digest of the item set),
so the signed trail pins what was generated without one event per item; the decisions on
items are audited one by one by the review module.
"""

from __future__ import annotations

import hashlib
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Row, Select, or_, select
from sqlalchemy.orm import Session

from certification.context import Held, PeerTable, grants, iso, last_sign_ins, sod_conflicts
from certification.models import Campaign, ReviewItem
from certification.scoping import (
    SUPPORTED_KINDS,
    ItemFacts,
    Reviewer,
    ReviewerRule,
    Scope,
    holding_in_scope,
    item_in_scope,
    parse_scope,
    resolve_reviewer,
)
from certification.writer import ItemIds, ItemWriter, sqlite_cache
from idgov.assignments.repository import in_force
from idgov.catalog.snapshot import current_snapshot
from idgov.clock import Clock
from idgov.errors import Conflict, FieldError, InvalidInput
from idgov.models.application import Application
from idgov.models.assignment import Assignment
from idgov.models.catalog import Entitlement, Role
from idgov.models.identity import Identity
from idgov.policy.snapshot import PolicySnapshot, risk_rank
from idgov.types import Actor

CHUNK = 5_000
# A scope list up to this long becomes an SQL ``IN``; a longer one is applied in memory.
IN_LIST_MAX = 1_000
_MOD = 2**256


FIELDS = ("id", "assignment_id", "identity_id", "role_id", "entitlement_id", "application_id",
          "source", "risk", "privileged", "sod_conflict", "reviewer_id", "reviewer_group_id",
          "original_reviewer_id", "context")


@dataclass
class People:
    """Everyone's manager and state, and their (department, job code) peer group."""

    manager: dict[uuid.UUID, uuid.UUID | None]
    active: set[uuid.UUID]
    group_of: dict[uuid.UUID, int | None]
    groups: dict[tuple[str, str], int]
    department: dict[uuid.UUID, str]

    @classmethod
    def load(cls, session: Session) -> People:
        manager: dict[uuid.UUID, uuid.UUID | None] = {}
        active: set[uuid.UUID] = set()
        group_of: dict[uuid.UUID, int | None] = {}
        groups: dict[tuple[str, str], int] = {}
        departments: dict[uuid.UUID, str] = {}
        for identity_id, manager_id, state, department, job_code in session.execute(
                select(Identity.id, Identity.manager_id, Identity.lifecycle_state,
                       Identity.department, Identity.job_code)):
            manager[identity_id] = manager_id
            if state == "active":
                active.add(identity_id)
            if department is not None:
                departments[identity_id] = department
                if job_code is not None:
                    group_of[identity_id] = groups.setdefault((department, job_code),
                                                              len(groups))
        return cls(manager, active, group_of, groups, departments)


def _pairs(session: Session, key: Any, value: Any) -> dict[uuid.UUID, uuid.UUID | None]:
    return {k: v for k, v in session.execute(select(key, value))}


class Catalog:
    """Facts per role and entitlement (reach, risk, owner), memoised from the snapshot."""

    def __init__(self, session: Session, snapshot: PolicySnapshot, scope: Scope) -> None:
        self.snapshot = snapshot
        self.scope = scope
        self.role_owner = _pairs(session, Role.id, Role.owner_id)
        self.ent_owner = _pairs(session, Entitlement.id, Entitlement.owner_id)
        self.app_owner = _pairs(session, Application.id, Application.owner_id)
        self._facts: dict[uuid.UUID, ItemFacts] = {}
        self._in_scope: dict[uuid.UUID, bool] = {}

    def facts(self, role_id: uuid.UUID | None, entitlement_id: uuid.UUID | None) -> ItemFacts:
        key = role_id or entitlement_id
        assert key is not None
        found = self._facts.get(key)
        if found is None:
            found = self._facts[key] = self._build(role_id, entitlement_id)
        return found

    def _build(self, role_id: uuid.UUID | None, entitlement_id: uuid.UUID | None) -> ItemFacts:
        snapshot = self.snapshot
        if role_id is not None:
            closure = snapshot.closure(role_id)
            apps = frozenset(snapshot.entitlements[e].application_id
                             for e in closure.entitlement_set if e in snapshot.entitlements)
            return ItemFacts("role", role_id, apps, closure.risk, closure.privileged,
                             self.role_owner.get(role_id))
        assert entitlement_id is not None
        node = snapshot.entitlements.get(entitlement_id)
        if node is None:  # not in the snapshot (cannot happen with a consistent catalog)
            return ItemFacts("entitlement", entitlement_id, frozenset(), "critical", False,
                             self.ent_owner.get(entitlement_id))
        return ItemFacts("entitlement", entitlement_id, frozenset((node.application_id,)),
                         node.risk, node.privileged, self.ent_owner.get(entitlement_id))

    def in_scope(self, role_id: uuid.UUID | None, entitlement_id: uuid.UUID | None) -> bool:
        key = role_id or entitlement_id
        assert key is not None
        found = self._in_scope.get(key)
        if found is None:
            found = self._in_scope[key] = item_in_scope(self.scope,
                                                        self.facts(role_id, entitlement_id))
        return found

    def wanted(self) -> tuple[set[uuid.UUID], set[uuid.UUID]] | None:
        """The roles and entitlements in scope, when the scope filters items (else None)."""
        scope = self.scope
        if not (scope.names_items or scope.min_risk or scope.privileged_only
                or scope.high_or_privileged):
            return None
        roles = {r for r in self.snapshot.roles if self.in_scope(r, None)}
        ents = {e for e in self.snapshot.entitlements if self.in_scope(None, e)}
        return roles, ents

    def application_of(self, facts: ItemFacts) -> uuid.UUID | None:
        """The application whose owner reviews the item: its single application, else the
        first application of the scope that it reaches."""
        if facts.application_id is not None:
            return facts.application_id
        named = sorted(facts.applications & self.scope.application_ids, key=str)
        return named[0] if named else None


def _stream(scope: Scope, at: datetime,
            wanted: tuple[set[uuid.UUID], set[uuid.UUID]] | None) -> Select[Any]:
    columns: tuple[Any, ...] = (Assignment.id, Assignment.identity_id, Assignment.role_id,
                  Assignment.entitlement_id, Assignment.source, Assignment.request_line_id,
                  Assignment.valid_from, Assignment.granted_by, Assignment.last_certified_at,
                  Assignment.last_certified_by)
    stmt: Select[Any] = select(*columns).where(in_force(at))
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


@dataclass
class Tally:
    """The counts of a generation, and the digest of its items."""

    items: int = 0
    unresolved: int = 0
    sod_conflicts: int = 0
    privileged: int = 0
    high_risk: int = 0
    digest: int = 0
    reviewers: set[uuid.UUID] = field(default_factory=set)
    groups: set[uuid.UUID] = field(default_factory=set)
    by_rule: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        return {"items": self.items, "reviewers": len(self.reviewers),
                "reviewer_groups": len(self.groups), "unresolved": self.unresolved,
                "by_rule": dict(sorted(self.by_rule.items())),
                "sod_conflicts": self.sod_conflicts, "privileged": self.privileged,
                "high_risk": self.high_risk, "pending": self.items,
                "items_digest": f"{self.digest:064x}"}


def overlapping_campaign(session: Session, campaign_id: uuid.UUID,
                         assignment_ids: Sequence[uuid.UUID]) -> Campaign | None:
    """An active campaign (other than ``campaign_id``) with an item of these assignments."""
    found = session.scalars(
        select(ReviewItem.campaign_id).join(Campaign, Campaign.id == ReviewItem.campaign_id)
        .where(ReviewItem.assignment_id.in_(assignment_ids), Campaign.state == "active",
               Campaign.id != campaign_id).limit(1)).first()
    return None if found is None else session.get(Campaign, found)


def generate_items(session: Session, *, campaign: Campaign, actor: Actor, clock: Clock) -> int:
    """Write one review item per assignment in force now in ``campaign``'s scope; returns how
    many. Sets ``campaign.counts`` and ``generated_at``; the caller changes the state and
    audits. ``Conflict`` (nothing kept: the unit of work rolls back) when an assignment is
    already an item of another active campaign; ``InvalidInput`` for an unsupported kind."""
    if campaign.kind not in SUPPORTED_KINDS:
        raise InvalidInput(f"{campaign.kind} campaigns are not yet supported",
                           errors=[FieldError("kind", "not yet supported")])
    now = clock.now()
    snapshot = current_snapshot(session, at=now)
    scope = parse_scope(campaign.scope, kind=campaign.kind)
    catalog = Catalog(session, snapshot, scope)
    people = People.load(session)
    wanted = catalog.wanted()
    small = wanted is not None and len(wanted[0]) + len(wanted[1]) <= IN_LIST_MAX
    peers = PeerTable.load(session, at=now, group_of=people.group_of, groups=people.groups,
                           active=people.active, role_ids=wanted[0] if small and wanted else None,
                           entitlement_ids=wanted[1] if small and wanted else None)
    others_active = session.scalar(select(Campaign.id).where(
        Campaign.state == "active", Campaign.id != campaign.id).limit(1)) is not None
    builder = _Builder(session, campaign, catalog, people, peers, snapshot, now)
    writer = ItemWriter(session, fields=FIELDS, constant={
        "campaign_id": campaign.id, "decision": "pending", "remediation": "none",
        "created_at": now})
    with sqlite_cache(session):
        _generate(session, campaign, scope, catalog, people, builder, writer, now, wanted,
                  others_active)
    campaign.counts = builder.tally.as_dict()
    campaign.generated_at = now
    return builder.tally.items


def _generate(session: Session, campaign: Campaign, scope: Scope, catalog: Catalog,
              people: People, builder: _Builder, writer: ItemWriter, now: datetime,
              wanted: tuple[set[uuid.UUID], set[uuid.UUID]] | None,
              others_active: bool) -> None:
    result = session.execute(_stream(scope, now, wanted).execution_options(yield_per=CHUNK))
    for part in result.partitions():
        rows = [r for r in part if catalog.in_scope(r.role_id, r.entitlement_id)
                and holding_in_scope(scope, assignment_id=r.id, identity_id=r.identity_id,
                                     department=people.department.get(r.identity_id),
                                     source=r.source)]
        if not rows:
            continue
        if others_active:
            other = overlapping_campaign(session, campaign.id, [r.id for r in rows])
            if other is not None:
                result.close()
                raise Conflict(f"assignments in this scope are already under review in the "
                               f"active campaign '{other.name}' ({other.id})",
                               campaign_id=str(other.id))
        writer.write(builder.items(rows))


class _Builder:
    """Turns a chunk of assignment rows into review item rows, counting as it goes."""

    def __init__(self, session: Session, campaign: Campaign, catalog: Catalog, people: People,
                 peers: PeerTable, snapshot: PolicySnapshot, now: datetime) -> None:
        self.session, self.catalog = session, catalog
        self.people, self.peers, self.snapshot, self.now = people, peers, snapshot, now
        self.rule = ReviewerRule.of(campaign.kind, campaign.fallbacks or [],
                                    campaign.fallback_group_id)
        self.tally = Tally()
        self.ids = ItemIds(int(now.timestamp() * 1000))
        self.stamps: dict[datetime, str | None] = {}

    def stamp(self, value: datetime | None) -> str | None:
        """``iso(value)``, memoised (bulk grants share their instants)."""
        if value is None:
            return None
        found = self.stamps.get(value)
        if found is None:
            if len(self.stamps) > 100_000:
                self.stamps.clear()
            found = self.stamps[value] = iso(value)
        return found

    def items(self, rows: Sequence[Row[Any]]) -> list[tuple[Any, ...]]:
        session, catalog, people, snapshot = self.session, self.catalog, self.people, \
            self.snapshot
        requests = grants(session, {r.request_line_id for r in rows
                                    if r.request_line_id is not None})
        sod = sod_conflicts(session, snapshot, [
            Held(r.id, r.identity_id, r.role_id, r.entitlement_id) for r in rows], at=self.now)
        apps = {catalog.facts(None, r.entitlement_id).application_id
                for r in rows if r.entitlement_id}
        signed_in = last_sign_ins(session, {r.identity_id for r in rows if r.entitlement_id},
                                  {a for a in apps if a is not None})
        manager_of, is_active = people.manager.get, people.active.__contains__
        tally, rule, ids, stamp = self.tally, self.rule, self.ids, self.stamp
        high = risk_rank("high")
        out: list[tuple[Any, ...]] = []
        for r in rows:
            facts = catalog.facts(r.role_id, r.entitlement_id)
            app_id = catalog.application_of(facts)
            reviewer: Reviewer = resolve_reviewer(
                rule, identity_id=r.identity_id, manager_of=manager_of, is_active=is_active,
                item_owner=facts.owner_id,
                application_owner=catalog.app_owner.get(app_id) if app_id else None)
            conflicts = sod.get(r.id)
            conflict = bool(conflicts) and any(not c["mitigated"] for c in conflicts or ())
            granted: dict[str, Any] = {"source": r.source, "at": stamp(r.valid_from),
                                       "by": r.granted_by}
            if r.request_line_id is not None and r.request_line_id in requests:
                granted.update(requests[r.request_line_id])
            application_id = facts.application_id
            context = {
                "item": {"type": facts.type, "name": snapshot.role_name(facts.id)
                         if facts.type == "role" else snapshot.entitlement_name(facts.id)},
                "granted": granted,
                "last_certified": None if r.last_certified_at is None else {
                    "at": iso(r.last_certified_at), "by": r.last_certified_by},
                "risk": facts.risk, "privileged": facts.privileged,
                "sod": conflicts or [],
                "peers": self.peers.share(r.identity_id, facts.id),
                "last_sign_in": signed_in.get((r.identity_id, application_id))
                if application_id else None,
                "reviewer_rule": reviewer.rule,
            }
            item_id = ids.next()
            reviewer_id = reviewer.reviewer_id
            out.append((item_id, r.id, r.identity_id, r.role_id, r.entitlement_id,
                        application_id, r.source, facts.risk, facts.privileged, conflict,
                        reviewer_id, reviewer.group_id, reviewer_id, context))
            tally.items += 1
            tally.digest = (tally.digest + int.from_bytes(hashlib.sha256(
                f"{item_id}|{r.id}|{reviewer.reviewer_id}|{reviewer.group_id}".encode()
            ).digest())) % _MOD
            if reviewer.reviewer_id is not None:
                tally.reviewers.add(reviewer.reviewer_id)
            elif reviewer.group_id is not None:
                tally.groups.add(reviewer.group_id)
            else:
                tally.unresolved += 1
            tally.by_rule[reviewer.rule or "none"] += 1
            tally.sod_conflicts += conflict
            tally.privileged += facts.privileged
            tally.high_risk += risk_rank(facts.risk) >= high
        return out
