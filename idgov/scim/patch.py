"""SCIM PATCH (RFC 7644 §3.5.2) applied to a SCIM representation. Pure code.

:func:`apply_patch` takes the current representation of a resource and a PatchOp body and
returns the representation the operations describe; the service then turns the difference
into an HR record (Users) or membership changes (Groups). Besides the RFC's shapes it reads
what Entra ID and Okta send: ``op`` in any case (``Replace``), booleans as strings
(``"False"``), the enterprise manager as a plain id string, a ``remove`` of members naming
them in ``value``, and an operation without path whose value object holds attribute paths
(``{"op": "replace", "value": {"active": false}}``,
``{"urn:...:enterprise:2.0:User:department": "x"}``).
"""

from __future__ import annotations

import copy
from typing import Any

from idgov.scim import schemas
from idgov.scim.errors import invalid_path, invalid_syntax, invalid_value, mutability, no_target
from idgov.scim.filter import (
    AttrPath,
    CompareOperator,
    Comparison,
    FilterNode,
    LogicalExpr,
    LogicalOperator,
    Ref,
    ValuePath,
    element_resolver,
    evaluate,
    lookup,
    parse_path,
    resolve,
)

OPS = ("add", "replace", "remove")
# Written by the service provider, ignored when a client sends them back in a value.
IGNORED = ("schemas", "id", "meta")


def operations_of(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The operations of a PatchOp message, checked for shape."""
    if not isinstance(body, dict):
        raise invalid_syntax("a PatchOp message is a JSON object")
    listed = lookup(body, "schemas")
    if listed is not None and schemas.PATCH_OP not in listed:
        raise invalid_syntax(f"schemas must list {schemas.PATCH_OP}")
    ops = lookup(body, "Operations")
    if not isinstance(ops, list) or not ops:
        raise invalid_syntax("Operations must be a non-empty list")
    for op in ops:
        if not isinstance(op, dict) or str(lookup(op, "op") or "").lower() not in OPS:
            raise invalid_syntax(f"each operation needs an op among {', '.join(OPS)}")
    return ops


def apply_patch(resource: dict[str, Any], body: dict[str, Any],
                kind: schemas.ResourceKind) -> dict[str, Any]:
    """The representation ``resource`` becomes under the PatchOp ``body``."""
    doc = copy.deepcopy(resource)
    for op in operations_of(body):
        name = str(lookup(op, "op")).lower()
        path = lookup(op, "path")
        value = lookup(op, "value")
        if path in (None, ""):
            _apply_without_path(doc, name, value, kind)
        else:
            if not isinstance(path, str):
                raise invalid_path("path must be a string")
            _apply_path(doc, name, path, value, kind)
    return doc


def _extension(uri: str, kind: schemas.ResourceKind) -> str | None:
    return next((e for e in kind.extensions if e.lower() == uri.lower()), None)


def _apply_without_path(doc: dict[str, Any], name: str, value: Any,
                        kind: schemas.ResourceKind) -> None:
    if name == "remove":
        raise no_target("a remove operation needs a path")
    if not isinstance(value, dict):
        raise invalid_value("an operation without path needs an object value")
    for key, item in value.items():
        if key.lower() in IGNORED:
            continue
        ext = _extension(key, kind)
        if ext is not None:
            if not isinstance(item, dict):
                raise invalid_value(f"{key} takes an object")
            for sub_key, sub_item in item.items():
                _apply_ref(doc, name, _ref(AttrPath(sub_key, uri=ext), kind), sub_item)
            continue
        _apply_path(doc, name, key, item, kind)


def _ref(path: AttrPath, kind: schemas.ResourceKind) -> Ref:
    ref = resolve(path, kind, error=invalid_path)
    if ref.leaf.get("mutability") == "readOnly" or ref.attr.get("mutability") == "readOnly":
        raise mutability(f"{path!s} is read-only")
    return ref


def _apply_path(doc: dict[str, Any], name: str, text: str, value: Any,
                kind: schemas.ResourceKind) -> None:
    node = parse_path(text)
    if isinstance(node, AttrPath) and node.uri and node.sub_attr is None and _extension(
        f"{node.uri}:{node.attr}", kind
    ):
        # The path names the extension itself: its value holds the extension's attributes.
        ext = f"{node.uri}:{node.attr}"
        if name == "remove":
            doc.pop(_extension(ext, kind) or ext, None)
            return
        _apply_without_path(doc, name, {ext: value}, kind)
        return
    if isinstance(node, AttrPath):
        _apply_ref(doc, name, _ref(node, kind), value)
        return
    if isinstance(node, ValuePath):
        _apply_value_path(doc, name, node, value, kind)
        return
    raise invalid_path(f"{text!r} is not a path to an attribute")


def _container(doc: dict[str, Any], ref: Ref, create: bool) -> dict[str, Any] | None:
    if ref.container is None:
        return doc
    found = doc.get(ref.container)
    if found is None and create:
        found = doc[ref.container] = {}
    return found if isinstance(found, dict) else None


def coerce(value: Any, definition: dict[str, Any]) -> Any:
    """A value of a PATCH or PUT as the attribute's type wants it (strings "True" accepted)."""
    if value is None:
        return None
    if definition.get("multiValued"):
        items = value if isinstance(value, list) else [value]
        single = {**definition, "multiValued": False}
        return [coerce(i, single) for i in items]
    kind = definition["type"]
    if kind == "boolean":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return value.strip().lower() == "true"
        raise invalid_value(f"{definition['name']} takes true or false, not {value!r}")
    if kind == "complex":
        if isinstance(value, str | int) and not isinstance(value, bool):
            # Entra sends the manager as its id alone.
            return {"value": str(value)}
        if not isinstance(value, dict):
            raise invalid_value(f"{definition['name']} takes an object")
        out: dict[str, Any] = {}
        for key, item in value.items():
            sub = next((s for s in definition.get("subAttributes", ())
                        if s["name"].lower() == key.lower()), None)
            if sub is None:
                raise invalid_value(f"unknown sub-attribute {definition['name']}.{key}")
            out[sub["name"]] = coerce(item, sub)
        return out
    if isinstance(value, bool | dict | list):
        raise invalid_value(f"{definition['name']} takes a string")
    return str(value)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, dict) and isinstance(b, dict) and "value" in a and "value" in b:
        return str(a["value"]).lower() == str(b["value"]).lower()
    return bool(a == b)


def _apply_ref(doc: dict[str, Any], name: str, ref: Ref, value: Any) -> None:
    container = _container(doc, ref, create=name != "remove")
    if container is None:
        return
    attr = ref.attr
    if ref.sub is not None:
        _apply_sub(container, name, ref, value)
        return
    current = container.get(ref.name)
    if name == "remove":
        if attr["multiValued"] and value is not None and isinstance(current, list):
            # Entra: {"op": "Remove", "path": "members", "value": [{"value": "id"}]}.
            gone = coerce(value, attr)
            container[ref.name] = [i for i in current if not any(_same(i, g) for g in gone)]
        else:
            container.pop(ref.name, None)
        return
    if value is None:
        raise invalid_value(f"{name} needs a value")
    new = coerce(value, attr)
    if attr["multiValued"]:
        if name == "add":
            kept = list(current) if isinstance(current, list) else []
            kept.extend(i for i in new if not any(_same(i, k) for k in kept))
            new = kept
        container[ref.name] = new
    elif attr["type"] == "complex" and isinstance(current, dict):
        container[ref.name] = {**current, **new}
    else:
        container[ref.name] = new


def _apply_sub(container: dict[str, Any], name: str, ref: Ref, value: Any) -> None:
    assert ref.sub is not None and ref.sub_attr is not None
    current = container.get(ref.name)
    targets: list[dict[str, Any]]
    if ref.attr["multiValued"]:
        targets = [i for i in current if isinstance(i, dict)] if isinstance(current, list) else []
        if not targets and name != "remove":
            targets = [{}]
            container[ref.name] = targets
    else:
        if not isinstance(current, dict):
            if name == "remove":
                return
            current = container[ref.name] = {}
        targets = [current]
    for target in targets:
        if name == "remove" or value is None:
            target.pop(ref.sub, None)
        else:
            target[ref.sub] = coerce(value, ref.sub_attr)


def _described(node: FilterNode) -> dict[str, Any] | None:
    """The entry an ``eq``-only value filter describes (to add it when nothing matches)."""
    terms = node.terms if isinstance(node, LogicalExpr) and node.op == LogicalOperator.and_ \
        else (node,)
    entry: dict[str, Any] = {}
    for term in terms:
        if not (isinstance(term, Comparison) and term.op == CompareOperator.eq
                and term.attr_path.sub_attr is None and term.attr_path.uri is None):
            return None
        entry[term.attr_path.attr] = term.value
    return entry


def _apply_value_path(doc: dict[str, Any], name: str, node: ValuePath, value: Any,
                      kind: schemas.ResourceKind) -> None:
    ref = _ref(node.attr_path, kind)
    attr = ref.attr
    if attr["type"] != "complex" or not attr["multiValued"]:
        raise invalid_path(f"{node.attr_path!s} is not a multi-valued complex attribute")
    sub_def = None
    if node.sub_attr is not None:
        sub_def = next((s for s in attr.get("subAttributes", ())
                        if s["name"].lower() == node.sub_attr.lower()), None)
        if sub_def is None:
            raise invalid_path(f"unknown sub-attribute {attr['name']}.{node.sub_attr}")
    container = _container(doc, ref, create=name != "remove")
    if container is None:
        return
    items = [i for i in (container.get(ref.name) or []) if isinstance(i, dict)]
    matched = [i for i in items if evaluate(node.val_filter, element_resolver(i, attr))]
    if name == "remove":
        if sub_def is None:
            container[ref.name] = [i for i in items if not any(i is m for m in matched)]
        else:
            for item in matched:
                item.pop(sub_def["name"], None)
        return
    if value is None:
        raise invalid_value(f"{name} needs a value")
    if not matched:
        entry = _described(node.val_filter)
        if entry is None:
            raise no_target(f"no value of {attr['name']} matches {node.val_filter!s}")
        entry = coerce(entry, {**attr, "multiValued": False})
        items.append(entry)
        matched = [entry]
    for item in matched:
        if sub_def is not None:
            item[sub_def["name"]] = coerce(value, sub_def)
        else:
            new = coerce(value, {**attr, "multiValued": False})
            if name == "replace":
                item.clear()
            item.update(new)
    container[ref.name] = items
