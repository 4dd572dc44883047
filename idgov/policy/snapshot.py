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
from typing import Literal, TypeVar

ItemType = Literal["role", "entitlement"]
_E = TypeVar("_E")


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
            [str(e.id), e.name, str(e.application_id), e.native_id, e.risk, e.privileged]
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
