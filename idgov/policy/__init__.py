"""Pure policy: role expansion, SoD evaluation and the snapshot they read. No I/O."""

from idgov.policy.expansion import (
    AssignmentRef,
    EffectiveAccess,
    Grant,
    Path,
    PathStep,
    effective_access,
    expand,
    find_cycle,
    included_roles,
)
from idgov.policy.snapshot import (
    EntitlementNode,
    InclusionEdge,
    ItemRef,
    PolicySnapshot,
    RoleEntitlementEdge,
    RoleNode,
    SodRuleSpec,
    make_snapshot,
)
from idgov.policy.sod import ExceptionRef, HeldItem, Violation, evaluate_sod

__all__ = [
    "AssignmentRef",
    "EffectiveAccess",
    "EntitlementNode",
    "ExceptionRef",
    "Grant",
    "HeldItem",
    "InclusionEdge",
    "ItemRef",
    "Path",
    "PathStep",
    "PolicySnapshot",
    "RoleEntitlementEdge",
    "RoleNode",
    "SodRuleSpec",
    "Violation",
    "effective_access",
    "evaluate_sod",
    "expand",
    "find_cycle",
    "included_roles",
    "make_snapshot",
]
