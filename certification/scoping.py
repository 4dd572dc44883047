"""Campaign scope and reviewer resolution: pure functions over plain data, no I/O.

A scope (``Campaign.scope``) is a JSON object of filters, all optional, all combined with
AND (an absent or empty filter does not filter)::

    {"application_ids": [...], "entitlement_ids": [...], "role_ids": [...],
     "assignment_ids": [...], "departments": [...], "identity_ids": [...],
     "min_risk": "high", "privileged_only": true, "sources": ["request", "birthright"]}

``application_ids``, ``entitlement_ids`` and ``role_ids`` together say WHAT is reviewed: an
assignment matches when its role is named, its entitlement is named, or what it reaches lies
in a named application (a role reaching any entitlement of the application). A
``privileged`` campaign adds "privileged or high risk and above" to the scope.

The reviewer of an item is the kind's primary reviewer (manager: the identity's manager;
owner: the owner of the role or entitlement; application: the application's owner), then
each fallback of the campaign in order. A candidate is skipped when absent, when it is the
identity itself (nobody reviews their own access) or when it is not active.
:func:`identity_reviewer` answers the same once per person when the chain settles before
any owner step, so that generation does not walk the chain per item. Ids may be UUIDs or
their stored text: these functions only compare them and look them up.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Hashable, Mapping, Sequence, Set
from dataclasses import dataclass, field
from typing import Any, TypeVar

from idgov.policy.snapshot import RISK_ORDER, risk_rank

# Assignment sources, as the core's check constraint spells them (kept here: this module
# reads no model; tests/certification/test_scoping.py checks the two agree).
ASSIGNMENT_SOURCES = ("request", "birthright", "admin", "aggregation")

SCOPE_LISTS = ("application_ids", "entitlement_ids", "role_ids", "assignment_ids",
               "identity_ids")
SCOPE_KEYS = (*SCOPE_LISTS, "departments", "min_risk", "privileged_only", "sources")
FALLBACKS = ("manager", "manager_of_manager", "owner", "application_owner", "group")
PRIMARY = {"manager": "manager", "privileged": "manager", "micro": "manager",
           "owner": "owner", "application": "application_owner"}
SUPPORTED_KINDS = ("manager", "owner", "application", "privileged", "micro")


@dataclass(frozen=True)
class Scope:
    """A parsed, valid scope. Empty sets mean "no filter"."""

    application_ids: frozenset[uuid.UUID] = frozenset()
    entitlement_ids: frozenset[uuid.UUID] = frozenset()
    role_ids: frozenset[uuid.UUID] = frozenset()
    assignment_ids: frozenset[uuid.UUID] = frozenset()
    identity_ids: frozenset[uuid.UUID] = frozenset()
    departments: frozenset[str] = frozenset()
    min_risk: str | None = None
    privileged_only: bool = False
    sources: frozenset[str] = frozenset()
    high_or_privileged: bool = False  # a privileged campaign: privileged OR risk >= high

    @property
    def names_items(self) -> bool:
        """The scope names roles, entitlements or applications (what is reviewed)."""
        return bool(self.application_ids or self.entitlement_ids or self.role_ids)


@dataclass(frozen=True)
class ItemFacts:
    """What a role or an entitlement amounts to, from the policy snapshot."""

    type: str  # "role" | "entitlement"
    id: uuid.UUID
    applications: frozenset[uuid.UUID]  # the application(s) it lies in or reaches
    risk: str
    privileged: bool
    owner_id: uuid.UUID | None = None
    application_id: uuid.UUID | None = field(init=False)
    """The item's application: the single one it lies in or reaches, else None."""

    def __post_init__(self) -> None:
        single = next(iter(self.applications)) if len(self.applications) == 1 else None
        object.__setattr__(self, "application_id", single)


def validate_scope(raw: Any) -> list[tuple[str, str]]:
    """Every problem of a scope document as (field path, message); empty when valid."""
    if raw is None:
        return []
    if not isinstance(raw, Mapping):
        return [("scope", "must be an object")]
    problems = [(f"scope.{k}", "unknown scope filter") for k in raw if k not in SCOPE_KEYS]
    for key in SCOPE_LISTS:
        values = raw.get(key)
        if values is None:
            continue
        if not isinstance(values, list):
            problems.append((f"scope.{key}", "must be a list of ids"))
            continue
        for i, value in enumerate(values):
            try:
                uuid.UUID(str(value))
            except ValueError:
                problems.append((f"scope.{key}[{i}]", "not a UUID"))
    departments = raw.get("departments")
    if departments is not None and (not isinstance(departments, list) or not all(
            isinstance(d, str) and d for d in departments)):
        problems.append(("scope.departments", "must be a list of department names"))
    if raw.get("min_risk") is not None and raw["min_risk"] not in RISK_ORDER:
        problems.append(("scope.min_risk", f"must be one of {', '.join(RISK_ORDER)}"))
    if not isinstance(raw.get("privileged_only", False), bool):
        problems.append(("scope.privileged_only", "must be true or false"))
    sources = raw.get("sources")
    if sources is not None and (not isinstance(sources, list) or any(
            s not in ASSIGNMENT_SOURCES for s in sources)):
        problems.append(("scope.sources",
                         f"must be a list of: {', '.join(ASSIGNMENT_SOURCES)}"))
    return problems


def parse_scope(raw: Mapping[str, Any] | None, *, kind: str = "manager") -> Scope:
    """The :class:`Scope` of a valid document (see :func:`validate_scope`) for ``kind``."""
    raw = raw or {}

    def ids(key: str) -> frozenset[uuid.UUID]:
        return frozenset(uuid.UUID(str(v)) for v in raw.get(key) or ())

    return Scope(application_ids=ids("application_ids"), entitlement_ids=ids("entitlement_ids"),
                 role_ids=ids("role_ids"), assignment_ids=ids("assignment_ids"),
                 identity_ids=ids("identity_ids"),
                 departments=frozenset(raw.get("departments") or ()),
                 min_risk=raw.get("min_risk"), privileged_only=bool(raw.get("privileged_only")),
                 sources=frozenset(raw.get("sources") or ()),
                 high_or_privileged=kind == "privileged")


def item_in_scope(scope: Scope, item: ItemFacts) -> bool:
    """Whether reviewing ``item`` (held by anyone) is within the scope's item filters."""
    if scope.names_items and not (
            (item.type == "role" and item.id in scope.role_ids)
            or (item.type == "entitlement" and item.id in scope.entitlement_ids)
            or item.applications & scope.application_ids):
        return False
    if scope.min_risk is not None and risk_rank(item.risk) < risk_rank(scope.min_risk):
        return False
    if scope.privileged_only and not item.privileged:
        return False
    return not (scope.high_or_privileged and not item.privileged
                and risk_rank(item.risk) < risk_rank("high"))


def holding_in_scope(scope: Scope, *, assignment_id: uuid.UUID, identity_id: uuid.UUID,
                     department: str | None, source: str) -> bool:
    """Whether one assignment passes the scope's filters on who holds it and how."""
    return ((not scope.assignment_ids or assignment_id in scope.assignment_ids)
            and (not scope.identity_ids or identity_id in scope.identity_ids)
            and (not scope.departments or department in scope.departments)
            and (not scope.sources or source in scope.sources))


# An id as a UUID or as the text the database stores it as: generation works on the latter
# (no UUID object per row); the functions below only compare and look ids up.
K = TypeVar("K", bound=Hashable)
ITEM_STEPS = frozenset(("owner", "application_owner"))


@dataclass(frozen=True)
class Reviewer:
    """Who reviews an item, and by which rule (``None`` rule: nobody could be found)."""

    reviewer_id: Hashable | None
    group_id: Hashable | None
    rule: str | None


NOBODY = Reviewer(None, None, None)


@dataclass(frozen=True)
class ReviewerRule:
    """A campaign's reviewer rule: the kind's primary reviewer, then the fallbacks."""

    chain: tuple[str, ...]
    group_id: Hashable | None = None

    @classmethod
    def of(cls, kind: str, fallbacks: Sequence[str], group_id: Hashable | None) -> ReviewerRule:
        primary = PRIMARY.get(kind, "manager")
        chain = (primary, *(f for f in fallbacks if f != primary))
        return cls(chain=tuple(dict.fromkeys(chain)), group_id=group_id)

    @property
    def item_free(self) -> bool:
        """The chain never asks the item (no owner or application owner step)."""
        return not ITEM_STEPS.intersection(self.chain)


def _walk(rule: ReviewerRule, *, identity_id: K, manager_of: Callable[[K], K | None],
          is_active: Callable[[K], bool], item_owner: K | None, application_owner: K | None,
          item_known: bool) -> Reviewer | None:
    for step in rule.chain:
        if step == "group":
            if rule.group_id is not None:
                return Reviewer(None, rule.group_id, "group")
            continue
        candidate: K | None
        if step == "manager":
            candidate = manager_of(identity_id)
        elif step == "manager_of_manager":
            manager = manager_of(identity_id)
            candidate = manager_of(manager) if manager is not None else None
        elif not item_known:
            return None  # an item step: the item decides from here on
        elif step == "owner":
            candidate = item_owner
        else:  # application_owner
            candidate = application_owner
        if candidate is not None and candidate != identity_id and is_active(candidate):
            return Reviewer(candidate, None, step)
    return NOBODY


def resolve_reviewer(rule: ReviewerRule, *, identity_id: K,
                     manager_of: Callable[[K], K | None],
                     is_active: Callable[[K], bool],
                     item_owner: K | None,
                     application_owner: K | None) -> Reviewer:
    """The first usable reviewer of ``rule.chain`` for ``identity_id``'s item.

    ``manager_of`` gives anyone's manager (None: none); ``is_active`` whether a person may
    review. A candidate who is the identity itself or not active is skipped; a group is
    always usable (members decide; nobody decides their own item, the review module checks).
    """
    found = _walk(rule, identity_id=identity_id, manager_of=manager_of, is_active=is_active,
                  item_owner=item_owner, application_owner=application_owner, item_known=True)
    assert found is not None
    return found


def identity_reviewer(rule: ReviewerRule, *, identity_id: K,
                      manager_of: Callable[[K], K | None],
                      is_active: Callable[[K], bool]) -> Reviewer | None:
    """What :func:`resolve_reviewer` answers for every item of ``identity_id`` when the chain
    settles before its first owner or application owner step; None when the item decides
    (then ask :func:`resolve_reviewer` per item). Lets generation resolve once per person."""
    return _walk(rule, identity_id=identity_id, manager_of=manager_of, is_active=is_active,
                 item_owner=None, application_owner=None, item_known=False)


def mapping_lookup(managers: Mapping[uuid.UUID, uuid.UUID | None]
                   ) -> Callable[[uuid.UUID], uuid.UUID | None]:
    """``manager_of`` over a plain mapping (unknown people have no manager)."""
    return managers.get


def set_lookup(active: Set[uuid.UUID]) -> Callable[[uuid.UUID], bool]:
    """``is_active`` over a plain set of active people."""
    return active.__contains__
