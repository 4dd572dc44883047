"""Which audit events grant privileged access (pure: no session, no I/O).

An event is marked ``privileged: true`` when it is one of:

- ``assignment.grant`` of an entitlement flagged privileged, or of a role that reaches a
  privileged entitlement through the role composition in force at the event's
  ``occurred_at`` (role -> included role ... -> entitlement, every link with
  ``valid_from <= occurred_at < valid_until``);
- ``role.add_entitlement`` linking a privileged entitlement, or ``role.include_role`` whose
  included role reaches one (at the event's instant): every holder of the role gains it;
- ``provisioning.complete`` of a ``grant`` operation that succeeded, for a privileged
  entitlement (the access has landed on the target);
- ``service_role.grant`` of ``administrator``, and ``api_token.create`` of a token carrying
  ``administrator``: control of the governance service itself.

The entitlement's ``privileged`` flag is read as it is now (the catalog keeps no history of
it); the role composition is read as of the event. Revocations, requests and approvals are
not grants and are never marked. The same event always gets the same mark from the pull
endpoint and from the syslog sinks, since both call :func:`mark`.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

PRIVILEGED_SERVICE_ROLES = frozenset({"administrator"})


@dataclass(frozen=True)
class Link:
    """A composition link, role -> role or role -> entitlement, with its validity window."""

    parent: uuid.UUID
    child: uuid.UUID
    valid_from: datetime
    valid_until: datetime | None

    def in_force(self, at: datetime) -> bool:
        return self.valid_from <= at and (self.valid_until is None or at < self.valid_until)


@dataclass(frozen=True)
class Catalog:
    """What the rule needs of the catalog: the privileged entitlements, the inclusion links
    and the role -> privileged entitlement links (every window, past and present)."""

    privileged_entitlements: frozenset[uuid.UUID]
    inclusions: tuple[Link, ...] = ()
    privileged_grants: tuple[Link, ...] = ()  # role -> privileged entitlement
    _children: dict[uuid.UUID, list[Link]] = field(default_factory=dict, compare=False)
    _grants: dict[uuid.UUID, list[Link]] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        for link in self.inclusions:
            self._children.setdefault(link.parent, []).append(link)
        for link in self.privileged_grants:
            self._grants.setdefault(link.parent, []).append(link)

    def role_reaches_privileged(self, role_id: uuid.UUID, at: datetime) -> bool:
        """True when ``role_id`` grants a privileged entitlement at ``at``, directly or
        through included roles (the inclusion graph is a DAG; visited roles are skipped)."""
        seen: set[uuid.UUID] = set()
        stack = [role_id]
        while stack:
            role = stack.pop()
            if role in seen:
                continue
            seen.add(role)
            if any(link.in_force(at) for link in self._grants.get(role, ())):
                return True
            stack.extend(link.child for link in self._children.get(role, ())
                         if link.in_force(at))
        return False


@dataclass(frozen=True)
class EventFacts:
    """The parts of an audit event the rule reads."""

    action: str
    occurred_at: datetime
    after: Mapping[str, Any] | None


def _uuid(value: Any) -> uuid.UUID | None:
    if value is None:
        return None
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


def referenced_entitlements(events: Iterable[EventFacts]) -> set[uuid.UUID]:
    """The entitlement ids the rule may look up for ``events``."""
    found: set[uuid.UUID] = set()
    for event in events:
        if event.action in ("assignment.grant", "role.add_entitlement",
                            "provisioning.complete") and event.after:
            value = _uuid(event.after.get("entitlement_id"))
            if value is not None:
                found.add(value)
    return found


def needs_roles(events: Iterable[EventFacts]) -> bool:
    """True when some event can only be judged through the role composition."""
    return any(
        (e.action == "assignment.grant" and e.after and e.after.get("role_id"))
        or e.action == "role.include_role" for e in events)


def is_privileged(event: EventFacts, catalog: Catalog) -> bool:
    """The rule of the module doc for one event."""
    after = event.after or {}
    action = event.action
    privileged = catalog.privileged_entitlements
    if action in ("assignment.grant", "role.add_entitlement"):
        entitlement = _uuid(after.get("entitlement_id"))
        if entitlement is not None:
            return entitlement in privileged
        role = _uuid(after.get("role_id"))
        return (action == "assignment.grant" and role is not None
                and catalog.role_reaches_privileged(role, event.occurred_at))
    if action == "role.include_role":
        child = _uuid(after.get("child_role_id"))
        return child is not None and catalog.role_reaches_privileged(child, event.occurred_at)
    if action == "provisioning.complete":
        return (after.get("action") == "grant" and after.get("state") == "succeeded"
                and _uuid(after.get("entitlement_id")) in privileged)
    if action == "service_role.grant":
        return after.get("role") in PRIVILEGED_SERVICE_ROLES
    if action == "api_token.create":
        roles = after.get("roles")
        return isinstance(roles, list) and any(r in PRIVILEGED_SERVICE_ROLES for r in roles)
    return False


def mark(events: Iterable[EventFacts], catalog: Catalog) -> list[bool]:
    """:func:`is_privileged` for each event, in order."""
    return [is_privileged(event, catalog) for event in events]
