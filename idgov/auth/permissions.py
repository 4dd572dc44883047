"""What each service role may do. Deny by default: a capability not listed is refused.

Route-level capabilities live here; row rules (a manager sees their reports, a requester
themselves) are applied by the services that load the rows.
"""

from __future__ import annotations

from collections.abc import Iterable

# The catalog a person browses to request access: applications, entitlements, roles.
_PERSON = frozenset({
    "catalog:read", "identities:read_related", "me:read",
    # Access requests: ask (for oneself, or a manager for a report), follow one's own
    # requests, decide the approval steps one is an approver of (row rules in the services),
    # delegate one's approvals, read one's notifications.
    "request_types:read", "requests:create", "requests:read_own", "approvals:decide",
    "delegations:write", "notifications:read_own",
    # Manual fulfilment: members of a resolution group work its tasks (row rule: membership).
    "fulfilment:work",
    # HR moves: the (new) manager reviews requested access flagged after a move (row rule).
    "review_flags:review",
    # Access certification: a reviewer decides the review items assigned to them (row rule).
    "certification:review",
})

ROLE_CAPABILITIES: dict[str, frozenset[str]] = {
    "administrator": frozenset(
        {
            "me:read",
            "identities:read",
            "identities:read_related",
            "identities:write",
            "groups:read",
            "groups:write",
            "catalog:read",
            "catalog:write",
            "accounts:read",
            "accounts:write",
            "sod:read",
            "sod:write",
            "assignments:read",
            "assignments:write",
            "tokens:read",
            "tokens:write",
            "audit:read",
            "request_types:read",
            "request_types:write",
            "requests:read",
            "approvals:read",
            "delegations:read",
            "authorities:read",
            "authorities:write",
            "provisioning:read",
            "provisioning:write",
            "reconciliation:read",
            "reconciliation:write",
            "fulfilment:read",
            "sod:scan",
            "hr:read",
            "hr:import",
            "hr:decide",
            "hr_sources:write",
            "birthright:read",
            "birthright:write",
            "review_flags:read",
            "review_flags:decide",
            "scim:read",
            "scim:write",
            "certification:read",
            "certification:admin",
            "reports:read",
            "siem:read",
            "siem:write",
        }
    ),
    "auditor": frozenset(
        {
            "me:read",
            "identities:read",
            "identities:read_related",
            "groups:read",
            "catalog:read",
            "accounts:read",
            "sod:read",
            "assignments:read",
            "tokens:read",
            "audit:read",
            "request_types:read",
            "requests:read",
            "approvals:read",
            "delegations:read",
            "authorities:read",
            "provisioning:read",
            "reconciliation:read",
            "fulfilment:read",
            "sod:scan",
            "hr:read",
            "birthright:read",
            "review_flags:read",
            "certification:read",
            "reports:read",
            "siem:read",
        }
    ),
    "hr-system": frozenset(
        {"me:read", "identities:read", "identities:read_related", "identities:write",
         "groups:read", "hr:read", "hr:import", "scim:read", "scim:write"}
    ),
    "requester": _PERSON,
    "manager": _PERSON | {"assignments:read_related"},
    "approver": _PERSON,
    "owner": _PERSON | {"assignments:read_related", "sod:read"},
}


def capabilities_of(roles: Iterable[str]) -> frozenset[str]:
    """The union of the capabilities of ``roles``; unknown roles give nothing."""
    caps: set[str] = set()
    for role in roles:
        caps |= ROLE_CAPABILITIES.get(role, frozenset())
    return frozenset(caps)
