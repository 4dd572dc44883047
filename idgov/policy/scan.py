"""Detective SoD scan: every identity's broken rules, found fast and explained like evaluate_sod.

The scan never expands an identity's whole access. Each held role contributes the rules
whose side A / side B its memoised closure touches (``PolicySnapshot.closure``), each held
entitlement those the rule index gives it; a rule is broken when it is on both lists (a set
intersection). Only for a broken rule are paths found, and only the paths that end at the
rule's items (memoised per role and item), so the explanation equals what
:func:`idgov.policy.sod.evaluate_sod` says for the identity.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from types import MappingProxyType

from idgov.policy.expansion import (
    AssignmentRef,
    Grant,
    Path,
    PathStep,
    _path_key,
)
from idgov.policy.snapshot import ItemRef, ItemType, PolicySnapshot
from idgov.policy.sod import ExceptionRef, HeldItem, Violation

_NO_EXCEPTIONS: Mapping[uuid.UUID, ExceptionRef] = MappingProxyType({})
_NOBODY_EXCEPTED: Mapping[uuid.UUID, Mapping[uuid.UUID, ExceptionRef]] = MappingProxyType({})


class _Paths:
    """Path finding for one snapshot, with its memo tables bound once."""

    __slots__ = ("children", "grants", "holders", "paths", "snapshot", "steps")

    def __init__(self, snapshot: PolicySnapshot) -> None:
        self.snapshot = snapshot
        self.children = snapshot.children
        self.grants = snapshot.grants
        self.steps: dict[tuple[str, uuid.UUID], PathStep] = snapshot.memo("path_steps")
        self.paths: dict[tuple[uuid.UUID, ItemRef], tuple[tuple[Path, tuple[object, ...]], ...]]
        self.paths = snapshot.memo("paths_to")
        self.holders = snapshot.holders_of

    def step(self, kind: ItemType, item_id: uuid.UUID) -> PathStep:
        found = self.steps.get((kind, item_id))
        if found is None:
            name = (self.snapshot.role_name(item_id) if kind == "role"
                    else self.snapshot.entitlement_name(item_id))
            found = self.steps[kind, item_id] = PathStep(kind, item_id, name)
        return found

    def to(self, role_id: uuid.UUID, item: ItemRef
           ) -> tuple[tuple[Path, tuple[object, ...]], ...]:
        """Every path from ``role_id`` to ``item`` (as expansion's walk finds them), each
        with its sort key; memoised per (role, item)."""
        cached = self.paths.get((role_id, item))
        if cached is not None:
            return cached
        found: list[Path] = []
        children, grants, step = self.children, self.grants, self.step
        holders = self.holders(item)
        end = step(item.type, item.id)

        def visit(current: uuid.UUID, prefix: Path, on_path: frozenset[uuid.UUID]) -> None:
            here = (*prefix, step("role", current))
            if item.type == "role":
                if current == item.id:
                    found.append(here)
            else:
                for grant in grants.get(current, ()):
                    if grant.entitlement_id == item.id:
                        found.append((*here, end))
            for edge in children.get(current, ()):
                child = edge.child_id
                if child in holders and child not in on_path:
                    visit(child, here, on_path | {child})

        if role_id in holders:
            visit(role_id, (), frozenset({role_id}))
        result = tuple((p, _path_key(p)) for p in found)
        self.paths[role_id, item] = result
        return result

    def grants_of(self, holding: _Holding, item: ItemRef) -> tuple[Grant, ...]:
        """Every grant of ``item`` in ``holding``, ordered as ``effective_access`` does."""
        keyed: list[tuple[tuple[object, ...], AssignmentRef, Path]] = []
        if item.type == "entitlement":
            direct = holding.entitlements.get(item.id)
            if direct:
                one: Path = (self.step("entitlement", item.id),)
                one_key = _path_key(one)
                keyed.extend((one_key, a, one) for a in direct)
        for role_id in self.holders(item) & holding.role_set:
            for path, key in self.to(role_id, item):
                keyed.extend((key, a, path) for a in holding.roles[role_id])
        if len(keyed) > 1:
            keyed.sort(key=lambda k: (k[0], str(k[1].id)))
        return tuple(Grant(a.id, a.source, path) for _k, a, path in keyed)

    def explain(self, holding: _Holding, position: int,
                exceptions: Mapping[uuid.UUID, ExceptionRef]) -> Violation:
        index = self.snapshot.rule_index
        rule = index.rules[position]
        sides = []
        for side in index.sides[position]:
            held = []
            for item, name in side:
                grants = self.grants_of(holding, item)
                if grants:
                    held.append(HeldItem(item, name, grants))
            sides.append(tuple(held))
        exception = exceptions.get(rule.id) if rule.exception_allowed else None
        return Violation(rule, sides[0], sides[1], exception)


class _Holding:
    """One identity's assignments by the role or entitlement they name."""

    __slots__ = ("entitlements", "role_set", "roles")

    def __init__(self, assignments: Iterable[AssignmentRef]) -> None:
        self.roles: dict[uuid.UUID, list[AssignmentRef]] = {}
        self.entitlements: dict[uuid.UUID, list[AssignmentRef]] = {}
        for a in assignments:
            if a.role_id is not None:
                self.roles.setdefault(a.role_id, []).append(a)
            else:
                assert a.entitlement_id is not None
                self.entitlements.setdefault(a.entitlement_id, []).append(a)
        self.role_set = frozenset(self.roles)


def grants_of(snapshot: PolicySnapshot, assignments: Iterable[AssignmentRef],
              item: ItemRef) -> tuple[Grant, ...]:
    """Every grant of ``item`` by ``assignments``, ordered as ``effective_access`` orders them."""
    return _Paths(snapshot).grants_of(_Holding(assignments), item)


def explain_rules(snapshot: PolicySnapshot, assignments: Iterable[AssignmentRef],
                  positions: Iterable[int],
                  exceptions: Mapping[uuid.UUID, ExceptionRef] = _NO_EXCEPTIONS, *,
                  paths: _Paths | None = None) -> tuple[Violation, ...]:
    """The violations of the rules at ``positions`` (in ``snapshot.rule_index.rules``) by
    ``assignments``, with every path on both sides, ordered by rule name."""
    holding = _Holding(assignments)
    finder = paths or _Paths(snapshot)
    return tuple(finder.explain(holding, p, exceptions) for p in sorted(positions))


def touched(snapshot: PolicySnapshot, assignments: Iterable[AssignmentRef]
            ) -> tuple[set[int], set[int]]:
    """The positions of the rules whose side A, and side B, ``assignments`` touch."""
    side_a: set[int] = set()
    side_b: set[int] = set()
    closure_of = snapshot.closure
    by_entitlement = snapshot.rule_index.by_entitlement
    for a in assignments:
        if a.role_id is not None:
            closure = closure_of(a.role_id)
            side_a |= closure.side_a
            side_b |= closure.side_b
        else:
            sides = by_entitlement.get(a.entitlement_id)  # type: ignore[arg-type]
            if sides is not None:
                side_a |= sides[0]
                side_b |= sides[1]
    return side_a, side_b


def violations_of(snapshot: PolicySnapshot, assignments: Sequence[AssignmentRef],
                  exceptions: Mapping[uuid.UUID, ExceptionRef] = _NO_EXCEPTIONS, *,
                  rules: Collection[uuid.UUID] | None = None) -> tuple[Violation, ...]:
    """What ``evaluate_sod(snapshot, effective_access(snapshot, assignments), exceptions)``
    answers (optionally only for the rule ids ``rules``), without expanding everything."""
    side_a, side_b = touched(snapshot, assignments)
    broken = side_a & side_b
    if not broken:
        return ()
    if rules is not None:
        position = snapshot.rule_index.position
        broken &= {position[r] for r in rules if r in position}
    return explain_rules(snapshot, assignments, broken, exceptions)


def scan(snapshot: PolicySnapshot,
         holdings: Iterable[tuple[uuid.UUID, Sequence[AssignmentRef]]],
         exceptions: Mapping[uuid.UUID, Mapping[uuid.UUID, ExceptionRef]] = _NOBODY_EXCEPTED,
         *, rules: Collection[uuid.UUID] | None = None,
         ) -> Iterator[tuple[uuid.UUID, Violation]]:
    """Each (identity id, violation) of the enabled rules, identity by identity as given.

    ``holdings`` gives each identity's assignments in force; ``exceptions`` each identity's
    active exceptions by rule id; ``rules`` limits the scan to those rule ids. The violations
    of one identity come ordered by rule name, exactly as ``evaluate_sod`` gives them.
    """
    wanted: set[int] | None = None
    if rules is not None:
        position = snapshot.rule_index.position
        wanted = {position[r] for r in rules if r in position}
    finder = _Paths(snapshot)
    for identity_id, assignments in holdings:
        side_a, side_b = touched(snapshot, assignments)
        broken = side_a & side_b
        if wanted is not None:
            broken &= wanted
        if not broken:
            continue
        own = exceptions.get(identity_id, _NO_EXCEPTIONS)
        for violation in explain_rules(snapshot, assignments, broken, own, paths=finder):
            yield identity_id, violation
