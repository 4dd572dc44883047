"""A small hand-built catalog for the pure policy tests, with readable fixed ids."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from idgov.policy.snapshot import (
    EntitlementNode,
    InclusionEdge,
    ItemRef,
    ItemType,
    PolicySnapshot,
    RoleEntitlementEdge,
    RoleNode,
    SodRuleSpec,
    make_snapshot,
)

AS_OF = datetime(2026, 1, 15, 9, 0, tzinfo=UTC)
APP = uuid.UUID(int=0xA00)


def uid(name: str) -> uuid.UUID:
    """A stable id per name, so expected results can be written literally."""
    return uuid.uuid5(uuid.NAMESPACE_URL, f"idgov-test:{name}")


ROLE_NAMES = ("Finance Clerk", "AP Processor", "Ledger Reader", "Vendor Admin", "Auditor")
ENT_NAMES = ("ap-invoices-write", "gl-read", "vendor-master-write", "payments-release")


def catalog(*, inclusions: tuple[tuple[str, str], ...] = (),
            grants: tuple[tuple[str, str], ...] = (),
            rules: tuple[SodRuleSpec, ...] = ()) -> PolicySnapshot:
    """A snapshot of the named roles and entitlements with the given edges (by name)."""
    return make_snapshot(
        as_of=AS_OF,
        roles=[RoleNode(uid(n), n, "technical" if n != "Finance Clerk" else "business")
               for n in ROLE_NAMES],
        entitlements=[EntitlementNode(uid(n), n, APP, f"cn={n}") for n in ENT_NAMES],
        inclusions=[InclusionEdge(uid(p), uid(c), uid(f"{p}>{c}")) for p, c in inclusions],
        role_entitlements=[RoleEntitlementEdge(uid(r), uid(e), uid(f"{r}>{e}"))
                           for r, e in grants],
        sod_rules=rules,
    )


Side = tuple[tuple[ItemType, str], ...]


def rule(name: str, side_a: Side, side_b: Side, *, severity: str = "high",
         exception_allowed: bool = True, enabled: bool = True) -> SodRuleSpec:
    """An SoD rule whose sides are (type, name) pairs."""
    return SodRuleSpec(
        id=uid(f"rule:{name}"), name=name,
        side_a=frozenset(ItemRef(t, uid(n)) for t, n in side_a),
        side_b=frozenset(ItemRef(t, uid(n)) for t, n in side_b),
        severity=severity, exception_allowed=exception_allowed, enabled=enabled,
    )
