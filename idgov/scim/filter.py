"""SCIM filters (RFC 7644 §3.4.2.2) evaluated over SCIM representations. Pure code.

The grammar is scim2-models' (``ScimFilter``/``Path``: RFC 7644's ABNF with its errata,
and Entra's ``emails[type eq "work"].value eq "x"`` form); this module resolves attribute
paths against the schemas in :mod:`idgov.scim.schemas` and evaluates the syntax tree:
attribute names case-insensitive, strings compared case-insensitively unless the attribute
is ``caseExact``, date-times as instants, a multi-valued attribute matching when any of its
values does (its ``value`` sub-attribute when the attribute is complex).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from scim2_models import Path, ScimFilter
from scim2_models.exceptions import InvalidFilterException, InvalidPathException
from scim2_models.path import (
    AttrPath,
    CompareOperator,
    Comparison,
    FilterNode,
    LogicalExpr,
    LogicalOperator,
    Not,
    Present,
    ValuePath,
)

from idgov.scim import schemas
from idgov.scim.errors import ScimError, invalid_filter, invalid_path

__all__ = [
    "AttrPath", "CompareOperator", "Comparison", "FilterNode", "LogicalExpr",
    "LogicalOperator", "Not", "Present", "Ref", "ValuePath", "matches", "parse_filter",
    "parse_path", "resolve",
]


def parse_filter(text: str) -> FilterNode:
    """The syntax tree of a filter, or 400 invalidFilter."""
    try:
        return ScimFilter(text).ast
    except (InvalidFilterException, ValueError) as exc:
        raise invalid_filter(f"invalid filter {text!r}: {exc}") from exc


def parse_path(text: str) -> Any:
    """The syntax tree of a PATCH path (AttrPath, ValuePath, ...), or 400 invalidPath."""
    try:
        return Path(text).ast
    except (InvalidPathException, InvalidFilterException, ValueError) as exc:
        raise invalid_path(f"invalid path {text!r}: {exc}") from exc


@dataclass(frozen=True)
class Ref:
    """An attribute path resolved against a resource type's schemas.

    ``container`` is None for the core schema, else the extension URN whose object holds
    the attribute; ``name``/``sub`` are the canonical spellings.
    """

    container: str | None
    name: str
    attr: dict[str, Any]
    sub: str | None = None
    sub_attr: dict[str, Any] | None = None

    @property
    def leaf(self) -> dict[str, Any]:
        """The definition of the addressed attribute or sub-attribute."""
        return self.sub_attr if self.sub_attr is not None else self.attr

    @property
    def key(self) -> str:
        """A case-normalised name for lookups (``urn:...:manager.value``)."""
        prefix = f"{self.container}:" if self.container else ""
        suffix = f".{self.sub}" if self.sub else ""
        return (prefix + self.name + suffix).lower()


def resolve(path: AttrPath, kind: schemas.ResourceKind, *,
            error: Callable[[str], ScimError] = invalid_filter) -> Ref:
    """Resolve ``path`` for resources of ``kind``; unknown attributes raise ``error``."""
    uri = path.uri
    if uri is not None and uri.lower() == kind.schema.lower():
        uri = None
    container: str | None = None
    if uri is None:
        attr = schemas.find_attr(kind.schema, path.attr)
    else:
        container = next((e for e in kind.extensions if e.lower() == uri.lower()), None)
        if container is None:
            raise error(f"unknown schema {uri!r}")
        attr = schemas.find_attr(container, path.attr)
    if attr is None:
        raise error(f"unknown attribute {path!s}")
    if path.sub_attr is None:
        return Ref(container, attr["name"], attr)
    sub = schemas.find_sub(attr, path.sub_attr)
    if sub is None:
        raise error(f"unknown attribute {path!s}")
    return Ref(container, attr["name"], attr, sub["name"], sub)


def lookup(obj: dict[str, Any], name: str) -> Any:
    """``obj[name]`` with the name matched case-insensitively."""
    if name in obj:
        return obj[name]
    lowered = name.lower()
    return next((v for k, v in obj.items() if k.lower() == lowered), None)


def values_of(resource: dict[str, Any], ref: Ref) -> tuple[list[Any], dict[str, Any]]:
    """The values a filter compares for ``ref`` and the definition that types them."""
    container = resource if ref.container is None else (lookup(resource, ref.container) or {})
    value = lookup(container, ref.name) if isinstance(container, dict) else None
    definition = ref.leaf
    sub = ref.sub
    if sub is None and ref.attr["type"] == "complex" and ref.attr["multiValued"]:
        # ``emails co "example.com"`` compares each email's value (RFC 7644 §3.4.2.2).
        sub = "value"
        definition = schemas.find_sub(ref.attr, "value") or ref.attr
    items = value if isinstance(value, list) else [value]
    if sub is not None:
        items = [lookup(i, sub) if isinstance(i, dict) else None for i in items]
    return [i for i in items if i is not None], definition


def _present(value: Any) -> bool:
    return value not in (None, "", [], {})


def _instant(value: Any, what: str) -> datetime:
    if isinstance(value, datetime):
        return value
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError as exc:
        raise invalid_filter(f"{value!r} is not a date-time ({what})") from exc


def compare(op: CompareOperator, actual: Any, expected: Any, definition: dict[str, Any]) -> bool:
    """One comparison of a filter between a stored value and the filter's value."""
    kind = definition["type"]
    if kind == "boolean":
        if op not in (CompareOperator.eq, CompareOperator.ne) or not isinstance(expected, bool):
            raise invalid_filter(f"{definition['name']} is boolean: only eq/ne true/false")
        return (actual is expected) if op == CompareOperator.eq else (actual is not expected)
    if kind == "dateTime":
        if op in (CompareOperator.co, CompareOperator.sw, CompareOperator.ew):
            raise invalid_filter(f"{definition['name']} is a date-time: co, sw, ew do not apply")
        left: Any = _instant(actual, "stored")
        right: Any = _instant(expected, "filter")
    elif isinstance(expected, bool | None) or isinstance(actual, bool):
        raise invalid_filter(f"{definition['name']} is not boolean")
    else:
        left, right = str(actual), str(expected)
        if not definition.get("caseExact", False):
            left, right = left.casefold(), right.casefold()
        if op == CompareOperator.co:
            return right in left
        if op == CompareOperator.sw:
            return left.startswith(right)
        if op == CompareOperator.ew:
            return left.endswith(right)
    table: dict[CompareOperator, Callable[[Any, Any], bool]] = {
        CompareOperator.eq: lambda a, b: a == b, CompareOperator.ne: lambda a, b: a != b,
        CompareOperator.gt: lambda a, b: a > b, CompareOperator.ge: lambda a, b: a >= b,
        CompareOperator.lt: lambda a, b: a < b, CompareOperator.le: lambda a, b: a <= b,
    }
    return table[op](left, right)


Resolver = Callable[[AttrPath], tuple[list[Any], dict[str, Any]]]


def _resource_resolver(resource: dict[str, Any], kind: schemas.ResourceKind) -> Resolver:
    def resolver(path: AttrPath) -> tuple[list[Any], dict[str, Any]]:
        return values_of(resource, resolve(path, kind))

    return resolver


def element_resolver(element: dict[str, Any], attr: dict[str, Any]) -> Resolver:
    """Resolve the sub-attribute names of a value filter (``emails[type eq "work"]``)."""

    def resolver(path: AttrPath) -> tuple[list[Any], dict[str, Any]]:
        if path.uri is not None or path.sub_attr is not None:
            raise invalid_filter(f"{path!s} is not a sub-attribute of {attr['name']}")
        sub = schemas.find_sub(attr, path.attr)
        if sub is None:
            raise invalid_filter(f"unknown sub-attribute {attr['name']}.{path.attr}")
        value = lookup(element, sub["name"])
        return ([] if value is None else [value]), sub

    return resolver


def evaluate(node: FilterNode, resolver: Resolver,
             elements: Callable[[AttrPath], tuple[list[dict[str, Any]], dict[str, Any]]]
             | None = None) -> bool:
    """Evaluate ``node`` with ``resolver`` naming the values of attribute paths."""
    if isinstance(node, LogicalExpr):
        results = (evaluate(t, resolver, elements) for t in node.terms)
        return all(results) if node.op == LogicalOperator.and_ else any(results)
    if isinstance(node, Not):
        return not evaluate(node.expr, resolver, elements)
    if isinstance(node, Present):
        values, _definition = resolver(node.attr_path)
        return any(_present(v) for v in values)
    if isinstance(node, Comparison):
        values, definition = resolver(node.attr_path)
        if node.op == CompareOperator.ne:
            return not any(compare(CompareOperator.eq, v, node.value, definition)
                           for v in values)
        return any(compare(node.op, v, node.value, definition) for v in values)
    if isinstance(node, ValuePath):
        if elements is None:
            raise invalid_filter("value filters cannot be nested")
        items, attr = elements(node.attr_path)
        return any(evaluate(node.val_filter, element_resolver(i, attr)) for i in items)
    raise invalid_filter(f"unsupported filter expression {node!s}")


def matches(node: FilterNode, resource: dict[str, Any], kind: schemas.ResourceKind) -> bool:
    """Whether the SCIM representation ``resource`` of ``kind`` satisfies ``node``."""

    def elements(path: AttrPath) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        ref = resolve(path, kind)
        if ref.sub is not None or ref.attr["type"] != "complex":
            raise invalid_filter(f"{path!s} is not a complex attribute")
        container = resource if ref.container is None else (
            lookup(resource, ref.container) or {})
        value = lookup(container, ref.name)
        items = value if isinstance(value, list) else ([value] if value else [])
        return [i for i in items if isinstance(i, dict)], ref.attr

    return evaluate(node, _resource_resolver(resource, kind), elements)


def check(node: FilterNode, kind: schemas.ResourceKind) -> None:
    """Refuse (invalidFilter) attribute paths that ``kind`` does not define."""
    if isinstance(node, LogicalExpr):
        for term in node.terms:
            check(term, kind)
    elif isinstance(node, Not):
        check(node.expr, kind)
    elif isinstance(node, Present | Comparison):
        resolve(node.attr_path, kind)
    elif isinstance(node, ValuePath):
        ref = resolve(node.attr_path, kind)
        if ref.attr["type"] != "complex":
            raise invalid_filter(f"{node.attr_path!s} is not a complex attribute")
        _check_sub(node.val_filter, ref.attr)


def _check_sub(node: FilterNode, attr: dict[str, Any]) -> None:
    if isinstance(node, LogicalExpr):
        for term in node.terms:
            _check_sub(term, attr)
    elif isinstance(node, Not):
        _check_sub(node.expr, attr)
    elif isinstance(node, Present | Comparison) and (
        node.attr_path.sub_attr is not None or schemas.find_sub(attr, node.attr_path.attr)
        is None
    ):
        raise invalid_filter(f"unknown sub-attribute {attr['name']}.{node.attr_path!s}")
