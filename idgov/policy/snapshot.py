"""The policy snapshot: an immutable, versioned picture of the catalog at one instant.

Plain frozen dataclasses keyed by UUID, built by ``idgov.catalog.snapshot`` from the database
(or by hand in tests). The version is a hash of the content, not of the instant, so two
snapshots of an unchanged catalog share a version and a cache may key on it.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from types import MappingProxyType
from typing import Any, Literal, TypeVar

ItemType = Literal["role", "entitlement"]
_E = TypeVar("_E")

RISK_ORDER = ("low", "medium", "high", "critical")


def risk_rank(risk: str) -> int:
    """0 for low .. 3 for critical (an unknown value counts as critical: fail closed)."""
    try:
        return RISK_ORDER.index(risk)
    except ValueError:
        return len(RISK_ORDER) - 1


@dataclass(frozen=True)
class RoleNode:
    """A role as policy sees it."""

    id: uuid.UUID
    name: str
    kind: str = "business"


@dataclass(frozen=True)
class EntitlementNode:
    """An entitlement as policy sees it."""

    id: uuid.UUID
    name: str
    application_id: uuid.UUID
    native_id: str
    risk: str = "low"
    privileged: bool = False
    data_classification: str = "none"


@dataclass(frozen=True)
class InclusionEdge:
    """parent role includes child role, through composition link ``link_id``."""

    parent_id: uuid.UUID
    child_id: uuid.UUID
    link_id: uuid.UUID | None = None


@dataclass(frozen=True)
class RoleEntitlementEdge:
    """role grants entitlement, through composition link ``link_id``."""

    role_id: uuid.UUID
    entitlement_id: uuid.UUID
    link_id: uuid.UUID | None = None


@dataclass(frozen=True, order=True)
class ItemRef:
    """A role or an entitlement named by type and id (a side of an SoD rule, a grant)."""

    type: ItemType
    id: uuid.UUID


@dataclass(frozen=True)
class SodRuleSpec:
    """Holding anything of ``side_a`` together with anything of ``side_b`` is a conflict."""

    id: uuid.UUID
    name: str
    side_a: frozenset[ItemRef]
    side_b: frozenset[ItemRef]
    severity: str = "high"
    exception_allowed: bool = True
    enabled: bool = True


@dataclass(frozen=True)
class PolicySnapshot:
    """Roles, entitlements, the composition edges valid at ``as_of``, and the SoD rules."""

    as_of: datetime
    roles: Mapping[uuid.UUID, RoleNode]
    entitlements: Mapping[uuid.UUID, EntitlementNode]
    inclusions: tuple[InclusionEdge, ...]
    role_entitlements: tuple[RoleEntitlementEdge, ...]
    sod_rules: tuple[SodRuleSpec, ...]
    version: str = field(default="")

    @cached_property
    def _closure_cache(self) -> dict[uuid.UUID, RoleClosure]:
        return {}

    @cached_property
    def _ancestor_cache(self) -> dict[ItemRef, frozenset[uuid.UUID]]:
        return {}

    @cached_property
    def _ordered_cache(self) -> dict[uuid.UUID, tuple[uuid.UUID, ...]]:
        return {}

    @cached_property
    def _memos(self) -> dict[str, dict[Any, Any]]:
        return {}

    def memo(self, name: str) -> dict[Any, Any]:
        """A memo table kept with this snapshot, for pure data derived from it."""
        return self._memos.setdefault(name, {})

    @cached_property
    def entitlement_rank(self) -> Mapping[uuid.UUID, int]:
        """Each entitlement's place in the (name, id) order."""
        ordered = sorted(self.entitlements.values(), key=lambda e: (e.name, str(e.id)))
        return MappingProxyType({e.id: i for i, e in enumerate(ordered)})

    def closure(self, role_id: uuid.UUID) -> RoleClosure:
        """What holding ``role_id`` reaches, computed once per role and kept (memoised)."""
        found = self._closure_cache.get(role_id)
        if found is None:
            _close_from(self, role_id)
            found = self._closure_cache[role_id]
        return found

    def warm(self) -> PolicySnapshot:
        """Compute every lazy table now (closures of all roles, rule index, reverse edges,
        entitlement order), so that later calls only read. Returns the snapshot."""
        _ = (self.rule_index, self.parents, self.granted_by, self.entitlement_rank)
        for role_id in self.roles:
            self.closure(role_id)
        return self

    def ordered_entitlements(self, role_id: uuid.UUID) -> tuple[uuid.UUID, ...]:
        """The entitlements ``role_id`` reaches, ordered by (name, id); memoised."""
        found = self._ordered_cache.get(role_id)
        if found is None:
            rank = self.entitlement_rank
            found = self._ordered_cache[role_id] = tuple(sorted(
                self.closure(role_id).entitlement_set,
                key=lambda e: rank.get(e, len(rank))))
        return found

    def holders_of(self, item: ItemRef) -> frozenset[uuid.UUID]:
        """The roles whose holding gives ``item`` (a role itself included); memoised."""
        found = self._ancestor_cache.get(item)
        if found is None:
            found = self._ancestor_cache[item] = _ancestors(self, item)
        return found

    @cached_property
    def parents(self) -> Mapping[uuid.UUID, tuple[uuid.UUID, ...]]:
        """Including roles by included role."""
        grouped: dict[uuid.UUID, list[uuid.UUID]] = {}
        for edge in self.inclusions:
            grouped.setdefault(edge.child_id, []).append(edge.parent_id)
        return MappingProxyType({k: tuple(v) for k, v in grouped.items()})

    @cached_property
    def granted_by(self) -> Mapping[uuid.UUID, tuple[uuid.UUID, ...]]:
        """Granting roles by entitlement."""
        grouped: dict[uuid.UUID, list[uuid.UUID]] = {}
        for edge in self.role_entitlements:
            grouped.setdefault(edge.entitlement_id, []).append(edge.role_id)
        return MappingProxyType({k: tuple(v) for k, v in grouped.items()})

    @cached_property
    def rule_index(self) -> SodIndex:
        """The enabled SoD rules indexed by the items of their sides."""
        return _index_rules(self, self.sod_rules)

    @cached_property
    def children(self) -> Mapping[uuid.UUID, tuple[InclusionEdge, ...]]:
        """Inclusion edges by parent role, in a stable order."""
        return _group(self.inclusions, key=lambda e: e.parent_id, order=lambda e: e.child_id)

    @cached_property
    def grants(self) -> Mapping[uuid.UUID, tuple[RoleEntitlementEdge, ...]]:
        """Role -> entitlement edges by role, in a stable order."""
        return _group(self.role_entitlements, key=lambda e: e.role_id,
                      order=lambda e: e.entitlement_id)

    def role_name(self, role_id: uuid.UUID) -> str:
        node = self.roles.get(role_id)
        return node.name if node else str(role_id)

    def entitlement_name(self, entitlement_id: uuid.UUID) -> str:
        node = self.entitlements.get(entitlement_id)
        return node.name if node else str(entitlement_id)

    def item_name(self, item: ItemRef) -> str:
        if item.type == "role":
            return self.role_name(item.id)
        return self.entitlement_name(item.id)


@dataclass(frozen=True)
class RoleClosure:
    """Everything one role reaches through inclusion, and what that amounts to.

    ``roles`` includes the role itself; ``side_a``/``side_b`` are the positions (in
    ``SodIndex.rules``) of the rules whose side A/B the reached roles and entitlements
    touch; ``risk`` is the highest risk of the reached entitlements ("low" when none).
    """

    role_id: uuid.UUID
    roles: frozenset[uuid.UUID]
    entitlement_set: frozenset[uuid.UUID]
    risk_rank: int
    privileged: bool
    data_classifications: frozenset[str]
    side_a: frozenset[int]
    side_b: frozenset[int]

    @property
    def risk(self) -> str:
        return RISK_ORDER[self.risk_rank]


@dataclass(frozen=True)
class SodIndex:
    """Enabled rules ordered by (name, id), and for each item the rules whose side A or
    side B names it (as positions in ``rules``). A rule is broken by a holding whose
    side-A positions and side-B positions share it."""

    rules: tuple[SodRuleSpec, ...]
    a_by_role: Mapping[uuid.UUID, frozenset[int]]
    b_by_role: Mapping[uuid.UUID, frozenset[int]]
    a_by_entitlement: Mapping[uuid.UUID, frozenset[int]]
    b_by_entitlement: Mapping[uuid.UUID, frozenset[int]]
    position: Mapping[uuid.UUID, int]
    by_entitlement: Mapping[uuid.UUID, tuple[frozenset[int], frozenset[int]]]
    """Both of the above for an entitlement in one look-up: (side A, side B) positions."""
    sides: tuple[tuple[tuple[tuple[ItemRef, str], ...], tuple[tuple[ItemRef, str], ...]], ...]
    """Per rule position: each side's items with their names, ordered (type, name, id)."""


_NO_RULES: frozenset[int] = frozenset()


def _index_rules(snapshot: PolicySnapshot, rules: Iterable[SodRuleSpec]) -> SodIndex:
    enabled = tuple(sorted((r for r in rules if r.enabled), key=lambda r: (r.name, str(r.id))))
    tables: dict[tuple[str, int], dict[uuid.UUID, set[int]]] = {
        (t, s): {} for t in ("role", "entitlement") for s in (0, 1)}
    sides = []
    for pos, rule in enumerate(enabled):
        for offset, side in ((0, rule.side_a), (1, rule.side_b)):
            for item in side:
                tables[item.type, offset].setdefault(item.id, set()).add(pos)
        sides.append(tuple(
            tuple((i, snapshot.item_name(i)) for i in sorted(
                side, key=lambda i: (i.type, snapshot.item_name(i), str(i.id))))
            for side in (rule.side_a, rule.side_b)))

    def frozen(key: tuple[str, int]) -> Mapping[uuid.UUID, frozenset[int]]:
        return MappingProxyType({k: frozenset(v) for k, v in tables[key].items()})

    return SodIndex(
        rules=enabled, a_by_role=frozen(("role", 0)), b_by_role=frozen(("role", 1)),
        a_by_entitlement=frozen(("entitlement", 0)), b_by_entitlement=frozen(("entitlement", 1)),
        position=MappingProxyType({r.id: i for i, r in enumerate(enabled)}),
        by_entitlement=MappingProxyType({
            e: (frozenset(tables["entitlement", 0].get(e, ())),
                frozenset(tables["entitlement", 1].get(e, ())))
            for e in tables["entitlement", 0].keys() | tables["entitlement", 1].keys()}),
        sides=tuple((a, b) for a, b in sides),
    )


def _close_from(snapshot: PolicySnapshot, root: uuid.UUID) -> None:
    """Memoise the closures of ``root`` and of every role below it, children first.

    Depth-first without recursion; a role's closure merges its children's. When the walk
    meets a role already on its stack (a cycle in bad data), the roles finished from then on
    are closed by a plain breadth-first walk instead, which is right whatever the shape.
    """
    cache = snapshot._closure_cache
    children = snapshot.children
    stack = [(root, iter(children.get(root, ())))]
    on_stack = {root}
    cyclic = False
    while stack:
        node, pending = stack[-1]
        for edge in pending:
            child = edge.child_id
            if child in cache:
                continue
            if child in on_stack:
                cyclic = True
                continue
            on_stack.add(child)
            stack.append((child, iter(children.get(child, ()))))
            break
        else:
            stack.pop()
            on_stack.discard(node)
            cache[node] = (_close_walk(snapshot, node) if cyclic
                           else _merge(snapshot, node, [cache[e.child_id]
                                                        for e in children.get(node, ())]))


def _merge(snapshot: PolicySnapshot, role_id: uuid.UUID,
           below: list[RoleClosure]) -> RoleClosure:
    index = snapshot.rule_index
    own = [g.entitlement_id for g in snapshot.grants.get(role_id, ())]
    roles = frozenset((role_id,)).union(*(c.roles for c in below))
    ents = frozenset(own).union(*(c.entitlement_set for c in below))
    side_a = set(index.a_by_role.get(role_id, _NO_RULES)).union(*(c.side_a for c in below))
    side_b = set(index.b_by_role.get(role_id, _NO_RULES)).union(*(c.side_b for c in below))
    rank = max((c.risk_rank for c in below), default=0)
    privileged = any(c.privileged for c in below)
    classes = set().union(*(c.data_classifications for c in below))
    nodes = snapshot.entitlements
    for eid in own:
        side_a |= index.a_by_entitlement.get(eid, _NO_RULES)
        side_b |= index.b_by_entitlement.get(eid, _NO_RULES)
        node = nodes.get(eid)
        if node is not None:
            rank = max(rank, risk_rank(node.risk))
            privileged = privileged or node.privileged
            if node.data_classification != "none":
                classes.add(node.data_classification)
    return RoleClosure(role_id=role_id, roles=roles, entitlement_set=ents, risk_rank=rank,
                       privileged=privileged, data_classifications=frozenset(classes),
                       side_a=frozenset(side_a), side_b=frozenset(side_b))


def _close_walk(snapshot: PolicySnapshot, role_id: uuid.UUID) -> RoleClosure:
    """Breadth-first over inclusion (a cycle in bad data ends, it does not loop)."""
    roles = {role_id}
    queue = [role_id]
    while queue:
        for edge in snapshot.children.get(queue.pop(), ()):
            if edge.child_id not in roles:
                roles.add(edge.child_id)
                queue.append(edge.child_id)
    flat = [_merge(snapshot, rid, []) for rid in roles]
    return RoleClosure(
        role_id=role_id, roles=frozenset(roles),
        entitlement_set=frozenset().union(*(c.entitlement_set for c in flat)),
        risk_rank=max(c.risk_rank for c in flat), privileged=any(c.privileged for c in flat),
        data_classifications=frozenset().union(*(c.data_classifications for c in flat)),
        side_a=frozenset().union(*(c.side_a for c in flat)),
        side_b=frozenset().union(*(c.side_b for c in flat)))


def _ancestors(snapshot: PolicySnapshot, item: ItemRef) -> frozenset[uuid.UUID]:
    if item.type == "role":
        found = {item.id}
        queue = [item.id]
    else:
        found = set(snapshot.granted_by.get(item.id, ()))
        queue = list(found)
    parents = snapshot.parents
    while queue:
        for parent in parents.get(queue.pop(), ()):
            if parent not in found:
                found.add(parent)
                queue.append(parent)
    return frozenset(found)


def _group(edges: Iterable[_E], *, key: Callable[[_E], uuid.UUID],
           order: Callable[[_E], uuid.UUID]) -> Mapping[uuid.UUID, tuple[_E, ...]]:
    grouped: dict[uuid.UUID, list[_E]] = {}
    for edge in edges:
        grouped.setdefault(key(edge), []).append(edge)
    return MappingProxyType({k: tuple(sorted(v, key=order)) for k, v in grouped.items()})


def make_snapshot(*, as_of: datetime, roles: Iterable[RoleNode],
                  entitlements: Iterable[EntitlementNode],
                  inclusions: Iterable[InclusionEdge] = (),
                  role_entitlements: Iterable[RoleEntitlementEdge] = (),
                  sod_rules: Iterable[SodRuleSpec] = ()) -> PolicySnapshot:
    """A snapshot of the given content, its version computed from that content."""
    role_map = {r.id: r for r in roles}
    ent_map = {e.id: e for e in entitlements}
    incl = tuple(sorted(set(inclusions), key=lambda e: (str(e.parent_id), str(e.child_id),
                                                        str(e.link_id))))
    grants = tuple(sorted(set(role_entitlements), key=lambda e: (str(e.role_id),
                                                                 str(e.entitlement_id),
                                                                 str(e.link_id))))
    rules = tuple(sorted(sod_rules, key=lambda r: str(r.id)))
    return PolicySnapshot(
        as_of=as_of,
        roles=MappingProxyType(role_map),
        entitlements=MappingProxyType(ent_map),
        inclusions=incl,
        role_entitlements=grants,
        sod_rules=rules,
        version=_version(role_map, ent_map, incl, grants, rules),
    )


def _version(roles: Mapping[uuid.UUID, RoleNode],
             entitlements: Mapping[uuid.UUID, EntitlementNode],
             inclusions: tuple[InclusionEdge, ...],
             grants: tuple[RoleEntitlementEdge, ...],
             rules: tuple[SodRuleSpec, ...]) -> str:
    content = {
        "roles": sorted([str(r.id), r.name, r.kind] for r in roles.values()),
        "entitlements": sorted(
            [str(e.id), e.name, str(e.application_id), e.native_id, e.risk, e.privileged,
             e.data_classification]
            for e in entitlements.values()
        ),
        "inclusions": [[str(e.parent_id), str(e.child_id), str(e.link_id)] for e in inclusions],
        "grants": [[str(e.role_id), str(e.entitlement_id), str(e.link_id)] for e in grants],
        "rules": [
            [str(r.id), r.name, r.severity, r.exception_allowed, r.enabled,
             sorted([i.type, str(i.id)] for i in r.side_a),
             sorted([i.type, str(i.id)] for i in r.side_b)]
            for r in rules
        ],
    }
    raw = json.dumps(content, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(raw).hexdigest()[:16]
