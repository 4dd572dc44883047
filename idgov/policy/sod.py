"""Separation of duties: which rules an identity's access breaks, and why.

A rule is broken when the identity holds at least one item of side A and one of side B.
Roles count when held directly or through inclusion, so a rule naming a technical role fires
for anyone holding a business role that includes it. A broken rule under an active exception
is still reported, marked mitigated, so auditors see it; preventive checks (at request time)
look at the unmitigated ones.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from idgov.policy.expansion import EffectiveAccess, Grant, Path
from idgov.policy.snapshot import ItemRef, PolicySnapshot, SodRuleSpec


@dataclass(frozen=True)
class ExceptionRef:
    """An active exception to one rule for the identity being evaluated."""

    id: uuid.UUID
    rule_id: uuid.UUID
    expires_at: datetime
    control: str = ""


@dataclass(frozen=True)
class HeldItem:
    """An item of one side of a rule that the identity holds, with every grant of it."""

    item: ItemRef
    name: str
    grants: tuple[Grant, ...]


@dataclass(frozen=True)
class Violation:
    """One broken rule: the held items of each side and, when granted, the exception."""

    rule: SodRuleSpec
    side_a: tuple[HeldItem, ...]
    side_b: tuple[HeldItem, ...]
    exception: ExceptionRef | None = None

    @property
    def mitigated(self) -> bool:
        """An active exception covers this violation."""
        return self.exception is not None

    def explanation(self) -> str:
        """One sentence naming the rule, the conflicting items and how each is held."""
        a = "; ".join(_describe(h) for h in self.side_a)
        b = "; ".join(_describe(h) for h in self.side_b)
        text = f"rule {self.rule.name!r} ({self.rule.severity}): holds {a} and also {b}"
        if self.exception is not None:
            text += f" (mitigated by exception {self.exception.id})"
        return text


def _path_text(path: Path) -> str:
    return " -> ".join(step.name for step in path)


def _describe(held: HeldItem) -> str:
    ways = sorted({("directly" if len(g.path) == 1 else "via " + _path_text(g.path))
                   for g in held.grants})
    return f"{held.name} ({', '.join(ways)})"


def _held(snapshot: PolicySnapshot, access: EffectiveAccess,
          side: Iterable[ItemRef]) -> tuple[HeldItem, ...]:
    found: list[HeldItem] = []
    for item in sorted(side, key=lambda i: (i.type, snapshot.item_name(i), str(i.id))):
        source = access.roles if item.type == "role" else access.entitlements
        grants = source.get(item.id)
        if grants:
            found.append(HeldItem(item, snapshot.item_name(item), grants))
    return tuple(found)


def evaluate_sod(snapshot: PolicySnapshot, access: EffectiveAccess,
                 exceptions: Mapping[uuid.UUID, ExceptionRef] | Iterable[ExceptionRef] = (),
                 ) -> tuple[Violation, ...]:
    """The enabled rules of ``snapshot`` that ``access`` breaks, each explained.

    ``exceptions`` are the identity's active exceptions (by rule id, or a plain iterable);
    an exception only counts for a rule that allows exceptions.
    """
    by_rule: Mapping[uuid.UUID, ExceptionRef] = (
        exceptions if isinstance(exceptions, Mapping) else {e.rule_id: e for e in exceptions}
    )
    violations: list[Violation] = []
    for rule in snapshot.sod_rules:
        if not rule.enabled:
            continue
        side_a = _held(snapshot, access, rule.side_a)
        side_b = _held(snapshot, access, rule.side_b)
        if side_a and side_b:
            exception = by_rule.get(rule.id) if rule.exception_allowed else None
            violations.append(Violation(rule, side_a, side_b, exception))
    return tuple(sorted(violations, key=lambda v: (v.rule.name, str(v.rule.id))))
