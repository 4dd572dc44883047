"""Identities and organisational groups as SCIM resources, and SCIM input as HR fields.

User mapping (RFC 7643 §4.1 and the enterprise extension §4.3):

==============================  ==========================================================
SCIM                            identity
==============================  ==========================================================
id                              id
userName                        user_name (employee_id when the identity has none)
externalId                      external_id
name.givenName / familyName     given_name / family_name
displayName                     display_name
emails[type eq "work"].value    email (one work address, primary)
title                           job_title
userType                        employment_type
timezone                        time_zone
addresses[type eq "work"]       location, as the work address's ``locality`` (Entra's and
  .locality                     Okta's usual mapping of a worker's city/office)
active                          lifecycle_state active or prehire
enterprise employeeNumber       employee_id (the HR key)
enterprise manager.value        manager_id (the manager's SCIM id)
enterprise department           department
enterprise costCenter           cost_center
enterprise organization         attributes["organization"]
enterprise division             attributes["division"]
groups (read-only)              organisational group memberships
==============================  ==========================================================
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from idgov.models.identity import Group, Identity
from idgov.scim import schemas
from idgov.scim.errors import invalid_value
from idgov.scim.filter import AttrPath, lookup, parse_path, resolve
from idgov.scim.patch import IGNORED, coerce

ACTIVE_STATES = ("active", "prehire")
# Marks an identity a SCIM client deleted: it is terminated, and hidden from SCIM (404)
# until a later POST with the same HR key brings it back as a rehire.
DELETED_MARK = "scim_deleted_at"


@dataclass(frozen=True)
class Member:
    """An identity as a member of a group, or a group as one of an identity's groups."""

    id: uuid.UUID
    display: str


def _stamp(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def _prune(doc: dict[str, Any]) -> dict[str, Any]:
    """Drop unassigned values (null, empty strings, lists and objects)."""
    out: dict[str, Any] = {}
    for key, value in doc.items():
        if isinstance(value, dict):
            value = _prune(value)
        if value in (None, "", [], {}):
            continue
        out[key] = value
    return out


def etag_of(resource: dict[str, Any]) -> str:
    """A weak ETag over the representation (its ``meta.version`` left out)."""
    meta = {k: v for k, v in resource.get("meta", {}).items() if k != "version"}
    text = json.dumps({**resource, "meta": meta}, sort_keys=True, default=str)
    return 'W/"' + hashlib.sha256(text.encode()).hexdigest()[:32] + '"'


def _versioned(doc: dict[str, Any]) -> dict[str, Any]:
    doc["meta"]["version"] = etag_of(doc)
    return doc


def user_resource(identity: Identity, *, base: str, manager: Identity | None,
                  groups: Sequence[Member] = ()) -> dict[str, Any]:
    """The SCIM User representation of ``identity``."""
    attrs = identity.attributes or {}
    manager_doc = None
    if manager is not None:
        manager_doc = {"value": str(manager.id), "$ref": f"{base}/Users/{manager.id}",
                       "displayName": manager.display_name}
    doc = _prune({
        "schemas": [schemas.USER, schemas.ENTERPRISE],
        "id": str(identity.id),
        "externalId": identity.external_id,
        "userName": identity.user_name or identity.employee_id,
        "name": {"formatted": f"{identity.given_name} {identity.family_name}".strip(),
                 "givenName": identity.given_name, "familyName": identity.family_name},
        "displayName": identity.display_name,
        "emails": [{"value": identity.email, "type": "work", "primary": True}]
        if identity.email else [],
        "addresses": [{"type": "work", "locality": identity.location, "primary": True}]
        if identity.location else [],
        "title": identity.job_title,
        "userType": identity.employment_type,
        "timezone": identity.time_zone,
        "active": identity.lifecycle_state in ACTIVE_STATES,
        "groups": [{"value": str(g.id), "$ref": f"{base}/Groups/{g.id}", "display": g.display,
                    "type": "direct"} for g in groups],
        schemas.ENTERPRISE: {
            "employeeNumber": identity.employee_id,
            "department": identity.department,
            "costCenter": identity.cost_center,
            "organization": attrs.get("organization"),
            "division": attrs.get("division"),
            "manager": manager_doc,
        },
    })
    # ``active: false`` is a value, not an absence.
    doc["active"] = identity.lifecycle_state in ACTIVE_STATES
    doc["meta"] = {"resourceType": "User", "created": _stamp(identity.created_at),
                   "lastModified": _stamp(identity.updated_at),
                   "location": f"{base}/Users/{identity.id}"}
    return _versioned(doc)


def group_resource(group: Group, *, base: str, members: Iterable[Member]) -> dict[str, Any]:
    """The SCIM Group representation of an organisational group."""
    doc = _prune({
        "schemas": [schemas.GROUP],
        "id": str(group.id),
        "externalId": group.external_id,
        "displayName": group.name,
        "members": [{"value": str(m.id), "$ref": f"{base}/Users/{m.id}", "display": m.display,
                     "type": "User"} for m in members],
    })
    doc["meta"] = {"resourceType": "Group", "created": _stamp(group.created_at),
                   "lastModified": _stamp(group.updated_at),
                   "location": f"{base}/Groups/{group.id}"}
    return _versioned(doc)


def normalise(body: Any, kind: schemas.ResourceKind) -> dict[str, Any]:
    """A client's resource body with canonical attribute names and typed values.

    Read-only and unknown attributes are dropped (RFC 7644 §3.5.1: a service provider
    ignores the read-only attributes a client sends back).
    """
    if not isinstance(body, dict):
        raise invalid_value("a resource is a JSON object")
    out: dict[str, Any] = {}
    for key, value in body.items():
        if key.lower() in IGNORED:
            continue
        ext = next((e for e in kind.extensions if e.lower() == key.lower()), None)
        if ext is not None:
            if not isinstance(value, dict):
                raise invalid_value(f"{key} takes an object")
            inner = {}
            for sub_key, sub_value in value.items():
                attr = schemas.find_attr(ext, sub_key)
                if attr is not None and attr["mutability"] != "readOnly":
                    inner[attr["name"]] = coerce(sub_value, attr)
            out[ext] = inner
            continue
        if ":" in key or "." in key:
            # An attribute given by its path, e.g. "urn:...:enterprise:2.0:User:department".
            ref = resolve(_attr_path(key), kind, error=invalid_value)
            if ref.leaf["mutability"] == "readOnly" or ref.attr["mutability"] == "readOnly":
                continue
            dest = out if ref.container is None else out.setdefault(ref.container, {})
            if ref.sub is None:
                dest[ref.name] = coerce(value, ref.attr)
            else:
                dest.setdefault(ref.name, {})[ref.sub] = coerce(value, ref.leaf)
            continue
        attr = schemas.find_attr(kind.schema, key)
        if attr is None or attr["mutability"] == "readOnly":
            continue
        out[attr["name"]] = coerce(value, attr)
    return out


def _attr_path(text: str) -> AttrPath:
    node = parse_path(text)
    if not isinstance(node, AttrPath):
        raise invalid_value(f"{text!r} is not an attribute path")
    return node


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _pick(items: Any, type_: str) -> dict[str, Any] | None:
    """The entry of a multi-valued attribute to keep: of ``type_``, else primary, else first."""
    entries = [i for i in items if isinstance(i, dict)] if isinstance(items, list) else []
    for test in (lambda i: str(i.get("type", "")).lower() == type_,
                 lambda i: i.get("primary") is True, lambda i: True):
        found = next((i for i in entries if test(i)), None)
        if found is not None:
            return found
    return None


@dataclass(frozen=True)
class UserInput:
    """What a SCIM User representation says, in HR terms."""

    fields: dict[str, Any]  # canonical WorkerRecord fields (manager excluded)
    external_id: str | None
    employee_number: str | None
    manager_ref: str | None  # the manager's SCIM id
    active: bool | None
    organisation: dict[str, str | None]  # organization, division


def user_input(doc: dict[str, Any]) -> UserInput:
    """Read a normalised User representation (see :func:`normalise`) as HR fields."""
    user_name = _text(doc.get("userName"))
    if user_name is None:
        raise invalid_value("userName is required")
    ent = doc.get(schemas.ENTERPRISE) or {}
    name = doc.get("name") or {}
    given = _text(name.get("givenName"))
    family = _text(name.get("familyName"))
    display = _text(doc.get("displayName"))
    if given is None or family is None:
        # Entra and Okta send name; a client that does not is given the display name's parts.
        words = (display or user_name).split(" ", 1)
        given = given or words[0]
        family = family or (words[1] if len(words) > 1 else words[0])
    email = _pick(doc.get("emails"), "work")
    address = _pick(doc.get("addresses"), "work")
    user_type = _text(doc.get("userType"))
    manager = ent.get("manager") or {}
    fields: dict[str, Any] = {
        "user_name": user_name,
        "given_name": given,
        "family_name": family,
        "display_name": display or f"{given} {family}",
        "email": _text(email.get("value")) if email else None,
        "job_title": _text(doc.get("title")),
        "employment_type": user_type.lower() if user_type else "employee",
        "time_zone": _text(doc.get("timezone")),
        "location": _text(address.get("locality")) if address else None,
        "department": _text(ent.get("department")),
        "cost_center": _text(ent.get("costCenter")),
    }
    return UserInput(
        fields=fields,
        external_id=_text(doc.get("externalId")),
        employee_number=_text(ent.get("employeeNumber")),
        manager_ref=_text(manager.get("value")) if isinstance(manager, dict) else None,
        active=doc.get("active") if isinstance(doc.get("active"), bool) else None,
        organisation={"organization": _text(ent.get("organization")),
                      "division": _text(ent.get("division"))},
    )


def group_input(doc: dict[str, Any]) -> tuple[str, str | None, list[str]]:
    """displayName, externalId and member ids of a normalised Group representation."""
    display = _text(doc.get("displayName"))
    if display is None:
        raise invalid_value("displayName is required")
    members = doc.get("members") or []
    ids = [str(m["value"]) for m in members if isinstance(m, dict) and m.get("value")]
    return display, _text(doc.get("externalId")), ids


def project(resource: dict[str, Any], *, attributes: Sequence[str],
            excluded: Sequence[str], kind: schemas.ResourceKind) -> dict[str, Any]:
    """Apply ``attributes``/``excludedAttributes`` (RFC 7644 §3.4.2.5); id always stays."""
    if not attributes and not excluded:
        return resource
    refs = [resolve(_attr_path(a), kind, error=invalid_value) for a in (attributes or excluded)]
    if attributes:
        out: dict[str, Any] = {"schemas": resource["schemas"], "id": resource["id"]}
        for ref in refs:
            src = resource if ref.container is None else resource.get(ref.container, {})
            value = lookup(src, ref.name)
            if value is None:
                continue
            dest = out if ref.container is None else out.setdefault(ref.container, {})
            if ref.sub is None:
                dest[ref.name] = value
            elif isinstance(value, dict) and ref.sub in value:
                dest.setdefault(ref.name, {})[ref.sub] = value[ref.sub]
            elif isinstance(value, list):
                kept = [{ref.sub: i[ref.sub]} for i in value if isinstance(i, dict)
                        and ref.sub in i]
                if kept:
                    dest[ref.name] = kept
        return out
    out = json.loads(json.dumps(resource))
    for ref in refs:
        if ref.name == "id" and ref.container is None:
            continue
        src = out if ref.container is None else out.get(ref.container, {})
        if ref.sub is None:
            src.pop(ref.name, None)
        elif isinstance(src.get(ref.name), dict):
            src[ref.name].pop(ref.sub, None)
        elif isinstance(src.get(ref.name), list):
            for item in src[ref.name]:
                item.pop(ref.sub, None)
    return out
