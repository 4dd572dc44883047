"""Role composition review (campaign kind ``composition``): role owners confirm what a role
includes.

**Scope** (``Campaign.scope``, all filters optional and combined with AND; an empty scope
takes every role):

- ``role_ids``: the roles whose composition is reviewed;
- ``entitlement_ids`` / ``application_ids``: only the links to those entitlements or to
  entitlements of those applications (a link to an included role matches when the role
  reaches one of them);
- ``min_risk`` / ``privileged_only``: the risk of what the link includes (an included role:
  the highest risk it reaches, privileged when it reaches anything privileged).

The identity-side filters (``departments``, ``identity_ids``, ``sources``,
``assignment_ids``) mean nothing here and are refused (422 naming the field).

**Generation** (:func:`generate_composition_items`): one review item per link in force at
the launch instant (``valid_from <= now`` and no end or an end after now) of the roles in
scope, role -> entitlement (``role_entitlement_id``) and role -> included role
(``role_inclusion_id``). ``role_id`` is the role whose composition it is;
``entitlement_id``, ``application_id``, ``risk`` and ``privileged`` describe what the link
includes (an included role: no entitlement, its single application if it reaches only one,
else the first application of the scope it reaches). ``source`` is ``catalog``;
``sod_conflict`` says that the role on its own breaks an enabled SoD rule and this link
brings in a side of it (certifying it then needs a comment). The reviewer is the role's
owner, then the campaign's fallbacks ``application_owner`` (the owner of that application)
and ``group``; ``manager`` / ``manager_of_manager`` have no person to start from and are
skipped. A reviewer must be active; an item nobody can review is left without reviewer and
counted in ``counts.unresolved``. The context holds the link's ``valid_from``, its last
certification, what it includes (names; for a role, the entitlements it reaches), and how
many people hold the role now (``holders``: everyone the removal would reach). A link
already under review in another active campaign makes the launch fail with Conflict.
``counts`` are those of :mod:`certification.generation`; the items digest sums SHA-256 over
``id|link id|reviewer_id|reviewer_group_id``.

**Decisions** go through the usual review machinery; applying them is
:mod:`certification.composition_apply`.
"""

from __future__ import annotations

import hashlib
import uuid
from collections import defaultdict
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import insert, or_, select
from sqlalchemy.orm import Session

from certification.composition_apply import apply_links
from certification.generation import Tally
from certification.models import Campaign, ReviewItem
from certification.scoping import parse_scope
from idgov.assignments.repository import in_force
from idgov.catalog.snapshot import current_snapshot
from idgov.clock import Clock
from idgov.errors import Conflict
from idgov.models.application import Application
from idgov.models.assignment import Assignment
from idgov.models.catalog import Role, RoleEntitlement, RoleInclusion
from idgov.models.identity import Identity
from idgov.policy.snapshot import ItemRef, PolicySnapshot, risk_rank
from idgov.types import Actor

if TYPE_CHECKING:
    from certification.remediation import _Batch

__all__ = ["IDENTITY_FILTERS", "apply_composition_items", "check_composition_scope",
           "generate_composition_items"]

# Scope filters about who holds access: a composition review has no holder to filter.
IDENTITY_FILTERS = ("departments", "identity_ids", "sources", "assignment_ids")
SOURCE = "catalog"
_IN = 1_000
_MOD = 2**256
# How many of the entitlements an included role reaches are named in the context.
NAMED_MAX = 50


def check_composition_scope(scope: Any) -> list[tuple[str, str]]:
    """(field path, message) for what a composition campaign's scope may not hold: the
    identity-side filters (the rest is checked by :func:`certification.scoping.validate_scope`)."""
    if not isinstance(scope, Mapping):
        return []
    return [(f"scope.{key}", "a composition campaign reviews what roles include, not who "
                             "holds access: this filter does not apply")
            for key in IDENTITY_FILTERS if scope.get(key)]


@dataclass(frozen=True)
class Link:
    """One composition link in force: ``role_id`` includes ``target_id`` (an entitlement for
    ``role_entitlement``, a role for ``role_inclusion``)."""

    kind: str  # "role_entitlement" | "role_inclusion"
    id: uuid.UUID
    role_id: uuid.UUID
    target_id: uuid.UUID
    valid_from: datetime
    last_certified_at: datetime | None
    last_certified_by: str | None


def _chunks(values: Collection[uuid.UUID]) -> list[list[uuid.UUID]]:
    ordered = sorted(values, key=str)
    return [ordered[i:i + _IN] for i in range(0, len(ordered), _IN)]


def _valid_at(model: Any, at: datetime) -> Any:
    return (model.valid_from <= at) & or_(model.valid_until.is_(None), model.valid_until > at)


def links_in_force(session: Session, *, at: datetime,
                   role_ids: Collection[uuid.UUID] = ()) -> list[Link]:
    """The composition links in force at ``at`` (of ``role_ids`` only, when given), in a
    stable order."""
    found: list[Link] = []
    for model, kind, parent, target in (
            (RoleEntitlement, "role_entitlement", RoleEntitlement.role_id,
             RoleEntitlement.entitlement_id),
            (RoleInclusion, "role_inclusion", RoleInclusion.parent_role_id,
             RoleInclusion.child_role_id)):
        stmt = select(model.id, parent, target, model.valid_from, model.last_certified_at,
                      model.last_certified_by).where(_valid_at(model, at))
        parts = [stmt.where(parent.in_(c)) for c in _chunks(role_ids)] if role_ids else [stmt]
        for part in parts:
            found.extend(Link(kind, *row) for row in session.execute(part))
    found.sort(key=lambda link: (str(link.role_id), link.kind, str(link.target_id)))
    return found


@dataclass(frozen=True)
class Included:
    """What a link includes, as the scope and the reviewer see it."""

    entitlement_id: uuid.UUID | None
    applications: frozenset[uuid.UUID]
    entitlements: frozenset[uuid.UUID]
    risk: str
    privileged: bool
    sod_sides: frozenset[int]


def included(snapshot: PolicySnapshot, link: Link) -> Included:
    """The facts of what ``link`` includes, from the policy snapshot."""
    if link.kind == "role_entitlement":
        node = snapshot.entitlements.get(link.target_id)
        a, b = snapshot.rule_index.by_entitlement.get(link.target_id, (frozenset(), frozenset()))
        if node is None:  # cannot happen with a consistent catalog: review it as critical
            return Included(link.target_id, frozenset(), frozenset((link.target_id,)),
                            "critical", False, a | b)
        return Included(node.id, frozenset((node.application_id,)), frozenset((node.id,)),
                        node.risk, node.privileged, a | b)
    closure = snapshot.closure(link.target_id)
    apps = frozenset(snapshot.entitlements[e].application_id for e in closure.entitlement_set
                     if e in snapshot.entitlements)
    return Included(None, apps, closure.entitlement_set, closure.risk, closure.privileged,
                    closure.side_a | closure.side_b)


def link_in_scope(scope: Any, link: Link, facts: Included) -> bool:
    """Whether a link passes a parsed composition scope (see the module doc)."""
    if scope.role_ids and link.role_id not in scope.role_ids:
        return False
    if (scope.entitlement_ids or scope.application_ids) and not (
            facts.entitlements & scope.entitlement_ids
            or facts.applications & scope.application_ids):
        return False
    if scope.min_risk is not None and risk_rank(facts.risk) < risk_rank(scope.min_risk):
        return False
    return not (scope.privileged_only and not facts.privileged)


def holders_per_role(session: Session, snapshot: PolicySnapshot,
                     role_ids: Collection[uuid.UUID], *, at: datetime) -> dict[uuid.UUID, int]:
    """How many people hold each role at ``at``: an assignment in force of the role or of a
    role that includes it (one query per thousand roles concerned)."""
    givers = {r: snapshot.holders_of(ItemRef("role", r)) for r in role_ids}
    wanted = set().union(*givers.values()) if givers else set()
    people: dict[uuid.UUID, set[uuid.UUID]] = defaultdict(set)
    for chunk in _chunks(wanted):
        for role_id, identity_id in session.execute(
                select(Assignment.role_id, Assignment.identity_id).distinct()
                .where(in_force(at), Assignment.role_id.in_(chunk))):
            if role_id is not None:
                people[role_id].add(identity_id)
    return {r: len(set().union(*(people.get(g, set()) for g in givers[r])))
            for r in role_ids}


def overlapping(session: Session, campaign_id: uuid.UUID, links: Sequence[Link]
                ) -> Campaign | None:
    """An active campaign (other than ``campaign_id``) with an item of one of these links."""
    for kind, column in (("role_entitlement", ReviewItem.role_entitlement_id),
                         ("role_inclusion", ReviewItem.role_inclusion_id)):
        for chunk in _chunks({link.id for link in links if link.kind == kind}):
            found = session.scalars(
                select(ReviewItem.campaign_id)
                .join(Campaign, Campaign.id == ReviewItem.campaign_id)
                .where(column.in_(chunk), Campaign.state == "active",
                       Campaign.id != campaign_id).limit(1)).first()
            if found is not None:
                return session.get(Campaign, found)
    return None


class _Reviewers:
    """The reviewer of a link: the role's owner, then ``application_owner``, ``group``."""

    def __init__(self, session: Session, campaign: Campaign, app_owner: Mapping[Any, Any]):
        self.role_owner = {i: o for i, o in session.execute(select(Role.id, Role.owner_id))}
        self.app_owner = app_owner
        candidates = {o for o in (*self.role_owner.values(), *app_owner.values()) if o}
        self.active = {i for chunk in _chunks(candidates) for i in session.scalars(
            select(Identity.id).where(Identity.id.in_(chunk),
                                      Identity.lifecycle_state == "active"))}
        fallbacks = [f for f in campaign.fallbacks or [] if f in ("application_owner", "group")]
        self.chain = tuple(dict.fromkeys(("owner", *fallbacks)))
        self.group_id = campaign.fallback_group_id

    def of(self, role_id: uuid.UUID, application_id: uuid.UUID | None
           ) -> tuple[uuid.UUID | None, uuid.UUID | None, str | None]:
        for step in self.chain:
            if step == "group":
                if self.group_id is not None:
                    return None, self.group_id, "group"
                continue
            candidate = (self.role_owner.get(role_id) if step == "owner"
                         else self.app_owner.get(application_id) if application_id else None)
            if candidate is not None and candidate in self.active:
                return candidate, None, step
        return None, None, None


def _sod(snapshot: PolicySnapshot, link: Link, facts: Included) -> list[dict[str, Any]]:
    """The enabled SoD rules the role breaks on its own to which this link brings a side."""
    index = snapshot.rule_index
    if not index.rules or not facts.sod_sides:
        return []
    closure = snapshot.closure(link.role_id)
    broken = closure.side_a & closure.side_b & facts.sod_sides
    return [{"rule_id": str(index.rules[p].id), "rule": index.rules[p].name,
             "severity": index.rules[p].severity, "mitigated": False}
            for p in sorted(broken)]


def generate_composition_items(session: Session, *, campaign: Campaign, actor: Actor,
                               clock: Clock) -> int:
    """Write one review item per composition link in force now in ``campaign``'s scope;
    returns how many. Sets ``campaign.counts`` and ``generated_at``; the caller (launch)
    changes the state and audits. Conflict (nothing kept) when a link is already an item of
    another active campaign."""
    del actor  # the launch is audited by the caller
    now = clock.now()
    snapshot = current_snapshot(session, at=now)
    scope = parse_scope(campaign.scope, kind="composition")
    chosen: list[tuple[Link, Included]] = []
    for link in links_in_force(session, at=now, role_ids=scope.role_ids):
        facts = included(snapshot, link)
        if link_in_scope(scope, link, facts):
            chosen.append((link, facts))
    if chosen:
        other = overlapping(session, campaign.id, [link for link, _ in chosen])
        if other is not None:
            raise Conflict(f"role composition links in this scope are already under review "
                           f"in the active campaign '{other.name}' ({other.id})",
                           campaign_id=str(other.id))
    apps = {i: (n, o) for i, n, o in session.execute(
        select(Application.id, Application.name, Application.owner_id))}
    reviewers = _Reviewers(session, campaign, {i: o for i, (_n, o) in apps.items()})
    holders = holders_per_role(session, snapshot, {link.role_id for link, _ in chosen}, at=now)
    tally = Tally()
    rows: list[dict[str, Any]] = []
    for link, facts in chosen:
        application_id = _application(facts, scope.application_ids)
        reviewer_id, group_id, rule = reviewers.of(link.role_id, application_id)
        sod = _sod(snapshot, link, facts)
        context = _context(snapshot, link, facts, apps, holders.get(link.role_id, 0), sod,
                           rule)
        item_id = uuid.uuid4()
        rows.append({
            "id": item_id, "campaign_id": campaign.id, "assignment_id": None,
            "identity_id": None,
            "role_entitlement_id": link.id if link.kind == "role_entitlement" else None,
            "role_inclusion_id": link.id if link.kind == "role_inclusion" else None,
            "role_id": link.role_id, "entitlement_id": facts.entitlement_id,
            "application_id": application_id, "source": SOURCE, "risk": facts.risk,
            "privileged": facts.privileged, "sod_conflict": bool(sod),
            "reviewer_id": reviewer_id, "reviewer_group_id": group_id,
            "original_reviewer_id": reviewer_id, "decision": "pending",
            "remediation": "none", "context": context, "created_at": now})
        _count(tally, item_id, link.id, reviewer_id, group_id, rule, facts, bool(sod))
    for start in range(0, len(rows), _IN):
        session.execute(insert(ReviewItem), rows[start:start + _IN])
    campaign.counts = tally.as_dict()
    campaign.generated_at = now
    return tally.items


def _application(facts: Included, named: frozenset[uuid.UUID]) -> uuid.UUID | None:
    if len(facts.applications) == 1:
        return next(iter(facts.applications))
    scoped = sorted(facts.applications & named, key=str)
    return scoped[0] if scoped else None


def _context(snapshot: PolicySnapshot, link: Link, facts: Included,
             apps: Mapping[uuid.UUID, tuple[str, Any]], holders: int,
             sod: list[dict[str, Any]], rule: str | None) -> dict[str, Any]:
    def entitlement(eid: uuid.UUID) -> dict[str, Any]:
        node = snapshot.entitlements.get(eid)
        app = node.application_id if node else None
        return {"id": str(eid), "name": snapshot.entitlement_name(eid),
                "application": apps.get(app, (None, None))[0] if app else None}

    includes: dict[str, Any]
    if link.kind == "role_entitlement":
        includes = {"type": "entitlement", **entitlement(link.target_id)}
    else:
        closure = snapshot.closure(link.target_id)
        reached = snapshot.ordered_entitlements(link.target_id)
        includes = {"type": "role", "id": str(link.target_id),
                    "name": snapshot.role_name(link.target_id),
                    "roles": sorted(snapshot.role_name(r) for r in closure.roles
                                    if r != link.target_id),
                    "entitlements": [entitlement(e) for e in reached[:NAMED_MAX]],
                    "entitlement_count": len(reached)}
    return {
        "link": {"type": link.kind, "id": str(link.id),
                 "valid_from": link.valid_from.isoformat()},
        "role": {"id": str(link.role_id), "name": snapshot.role_name(link.role_id)},
        "includes": includes,
        "last_certified": None if link.last_certified_at is None else {
            "at": link.last_certified_at.isoformat(), "by": link.last_certified_by},
        "holders": holders,
        "risk": facts.risk, "privileged": facts.privileged, "sod": sod,
        "reviewer_rule": rule,
    }


def _count(tally: Tally, item_id: uuid.UUID, link_id: uuid.UUID, reviewer_id: Any,
           group_id: Any, rule: str | None, facts: Included, sod: bool) -> None:
    tally.items += 1
    tally.digest = (tally.digest + int.from_bytes(hashlib.sha256(
        f"{item_id.hex}|{link_id}|{reviewer_id}|{group_id}".encode()).digest())) % _MOD
    if reviewer_id is not None:
        tally.reviewers.add(reviewer_id)
    elif group_id is not None:
        tally.groups.add(group_id)
    else:
        tally.unresolved += 1
    tally.by_rule[rule or "none"] += 1
    tally.sod_conflicts += sod
    tally.privileged += facts.privileged
    tally.high_risk += risk_rank(facts.risk) >= risk_rank("high")


def apply_composition_items(session: Session, items: Sequence[ReviewItem],
                            batch: _Batch) -> None:
    """Make decided composition items take effect (certify: the link's last certified;
    revoke: the link ended, protected access escalated): see
    :mod:`certification.composition_apply`."""
    apply_links(session, items, batch)
