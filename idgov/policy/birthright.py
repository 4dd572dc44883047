"""Birthright rules: who gets which role or entitlement from their HR attributes. Pure.

A condition is a small JSON expression:

* ``{"all": [c, ...]}``, ``{"any": [c, ...]}``, ``{"not": c}``;
* ``{"attribute": NAME, "op": OP, "value": V}`` with OP one of ``eq``, ``ne``, ``in``,
  ``not_in`` (V a list), ``starts_with``, ``contains`` (for ``groups``: membership),
  ``exists`` (no value).

NAME is one of :data:`ATTRIBUTES` or ``attributes.<key>`` (an extra HR attribute). Text
comparisons ignore case. An empty ``{"all": []}`` matches everyone. :func:`validate` reports
every problem of a condition as ``(path, message)`` pairs; :func:`matches` assumes a valid
condition.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

ATTRIBUTES: tuple[str, ...] = ("department", "location", "job_code", "job_title",
                               "cost_center", "employment_type", "groups")
OPS: tuple[str, ...] = ("eq", "ne", "in", "not_in", "starts_with", "contains", "exists")


@dataclass(frozen=True)
class RuleSpec:
    """One enabled rule, as the evaluator sees it."""

    id: uuid.UUID
    name: str
    condition: Mapping[str, Any]
    role_id: uuid.UUID | None
    entitlement_id: uuid.UUID | None


def _fold(value: Any) -> Any:
    return value.casefold() if isinstance(value, str) else value


def _value_of(subject: Mapping[str, Any], name: str) -> Any:
    if name.startswith("attributes."):
        extra = subject.get("attributes") or {}
        return extra.get(name.removeprefix("attributes.")) if isinstance(extra, Mapping) \
            else None
    return subject.get(name)


def _compare(op: str, actual: Any, wanted: Any) -> bool:
    if op == "exists":
        return actual not in (None, "", [], ())
    if isinstance(actual, list | tuple | set | frozenset):
        folded = {_fold(a) for a in actual}
        if op in ("contains", "eq"):
            return _fold(wanted) in folded
        if op == "ne":
            return _fold(wanted) not in folded
        if op == "in":
            return bool(folded & {_fold(w) for w in wanted})
        if op == "not_in":
            return not folded & {_fold(w) for w in wanted}
        return any(isinstance(a, str) and a.startswith(_fold(wanted)) for a in folded)
    a = _fold(actual)
    if op == "eq":
        return actual is not None and a == _fold(wanted)
    if op == "ne":
        return a != _fold(wanted)
    if op == "in":
        return actual is not None and a in {_fold(w) for w in wanted}
    if op == "not_in":
        return a not in {_fold(w) for w in wanted}
    if op == "starts_with":
        return isinstance(a, str) and a.startswith(_fold(wanted))
    return isinstance(a, str) and _fold(wanted) in a  # contains


def matches(condition: Mapping[str, Any], subject: Mapping[str, Any]) -> bool:
    """Whether ``subject`` (HR fields by canonical name, ``groups`` a list of names,
    ``attributes`` a mapping) satisfies ``condition``."""
    if "all" in condition:
        return all(matches(c, subject) for c in condition["all"])
    if "any" in condition:
        return any(matches(c, subject) for c in condition["any"])
    if "not" in condition:
        return not matches(condition["not"], subject)
    return _compare(condition["op"], _value_of(subject, condition["attribute"]),
                    condition.get("value"))


def validate(condition: Any, path: str = "condition") -> list[tuple[str, str]]:
    """Every problem of ``condition``, as (field path, message); empty when valid."""
    if not isinstance(condition, Mapping):
        return [(path, "must be an object")]
    for combinator in ("all", "any"):
        if combinator in condition:
            items = condition[combinator]
            if len(condition) != 1 or not isinstance(items, list):
                return [(path, f"'{combinator}' takes a list and nothing beside it")]
            return [problem for i, c in enumerate(items)
                    for problem in validate(c, f"{path}.{combinator}[{i}]")]
    if "not" in condition:
        if len(condition) != 1:
            return [(path, "'not' takes one condition and nothing beside it")]
        return validate(condition["not"], f"{path}.not")
    problems: list[tuple[str, str]] = []
    name = condition.get("attribute")
    if not isinstance(name, str) or not (name in ATTRIBUTES or (
            name.startswith("attributes.") and len(name) > len("attributes."))):
        problems.append((f"{path}.attribute",
                         f"must be one of {', '.join(ATTRIBUTES)} or attributes.<name>"))
    op = condition.get("op")
    if op not in OPS:
        problems.append((f"{path}.op", f"must be one of {', '.join(OPS)}"))
    elif op in ("in", "not_in"):
        value = condition.get("value")
        if not isinstance(value, list) or not value:
            problems.append((f"{path}.value", f"'{op}' takes a non-empty list"))
    elif op != "exists" and not isinstance(condition.get("value"), str | int | float | bool):
        problems.append((f"{path}.value", f"'{op}' takes a single value"))
    unknown = set(condition) - {"attribute", "op", "value"}
    if unknown:
        problems.append((path, f"unknown keys: {', '.join(sorted(unknown))}"))
    return problems


def evaluate(rules: Sequence[RuleSpec], subject: Mapping[str, Any]) -> list[RuleSpec]:
    """The rules ``subject`` satisfies, in the order given."""
    return [rule for rule in rules if matches(rule.condition, subject)]


def evaluate_many(rules: Sequence[RuleSpec], subjects: Iterable[Mapping[str, Any]]
                  ) -> list[list[RuleSpec]]:
    """:func:`evaluate` for each subject."""
    return [evaluate(rules, subject) for subject in subjects]
