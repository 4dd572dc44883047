"""SCIM Users: identities read as SCIM resources, written through the HR feed.

Every write of a User becomes one :class:`~idgov.lifecycle.records.WorkerRecord` run through
``idgov.lifecycle.feed.run_feed`` (source "scim", channel "scim", delta), so that joiner,
mover, leaver and rehire logic applies exactly as for a CSV or JSON feed; a rejected row is
answered 400 invalidValue with the feed's message. ``active: false`` (Entra's soft delete)
and DELETE are terminations with immediate effect; DELETE also marks the identity
(``attributes["scim_deleted_at"]``) so that SCIM answers 404 for it afterwards, until a POST
with the same HR key rehires it. The HR key (employee_id) is employeeNumber, else
externalId, else userName; it cannot change through SCIM.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Select
from sqlalchemy.orm import Session

from idgov.audit.service import apply_changes
from idgov.clock import Clock
from idgov.lifecycle.feed import run_feed, scim_source
from idgov.lifecycle.records import ParsedFeed, WorkerRecord
from idgov.models.identity import Identity
from idgov.scim import filter as scim_filter
from idgov.scim import repository as repo
from idgov.scim import schemas
from idgov.scim.errors import ScimError, invalid_value, mutability, not_found, uniqueness
from idgov.scim.patch import apply_patch
from idgov.scim.resources import (
    DELETED_MARK,
    UserInput,
    normalise,
    project,
    user_input,
    user_resource,
)
from idgov.types import Actor

DEFAULT_COUNT = 100


@dataclass(frozen=True)
class ListQuery:
    """The query parameters of a SCIM list or search (RFC 7644 §3.4.2)."""

    filter: str | None = None
    start_index: int = 1
    count: int | None = None
    sort_by: str | None = None
    sort_order: str | None = None
    attributes: Sequence[str] = field(default_factory=tuple)
    excluded: Sequence[str] = field(default_factory=tuple)


def _sort_key(ref: scim_filter.Ref) -> Callable[[dict[str, Any]], tuple[int, str]]:
    def key(resource: dict[str, Any]) -> tuple[int, str]:
        values, definition = scim_filter.values_of(resource, ref)
        if not values:
            return (1, "")
        text = str(values[0])
        return (0, text if definition.get("caseExact") else text.casefold())

    return key


def list_resources(session: Session, *, stmt: Select[Any], kind: schemas.ResourceKind,
                   query: ListQuery, id_column: Any,
                   render: Callable[[Sequence[Any]], list[dict[str, Any]]]) -> dict[str, Any]:
    """A ListResponse: filter pushed down where exact, else evaluated over the candidates."""
    node = scim_filter.parse_filter(query.filter) if query.filter else None
    exact = True
    if node is not None:
        scim_filter.check(node, kind)
        where, exact = repo.condition(node, kind)
        stmt = stmt.where(where)
    sort_ref = None
    if query.sort_by:
        path = scim_filter.parse_path(query.sort_by)
        if not isinstance(path, scim_filter.AttrPath):
            raise invalid_value(f"sortBy {query.sort_by!r} is not an attribute path")
        sort_ref = scim_filter.resolve(path, kind, error=invalid_value)
    descending = (query.sort_order or "ascending").lower() == "descending"
    start = max(1, query.start_index)
    count = schemas.MAX_RESULTS if query.count is None else min(max(0, query.count),
                                                                schemas.MAX_RESULTS)
    sort_col = repo.sort_column(sort_ref.key, kind) if sort_ref is not None else None
    if exact and (sort_ref is None or sort_col is not None):
        total = repo.count(session, stmt)
        order: list[Any] = []
        if sort_col is not None:
            order = [sort_col.desc() if descending else sort_col.asc()]
        rows = list(session.scalars(stmt.order_by(*order, id_column).offset(start - 1)
                                    .limit(count))) if count else []
        resources = render(rows)
    else:
        rows = list(session.scalars(stmt.order_by(id_column)))
        found = [r for r in render(rows) if node is None or scim_filter.matches(node, r, kind)]
        if sort_ref is not None:
            found.sort(key=_sort_key(sort_ref), reverse=descending)
        total = len(found)
        resources = found[start - 1:start - 1 + count]
    return {
        "schemas": [schemas.LIST_RESPONSE], "totalResults": total,
        "startIndex": start, "itemsPerPage": len(resources),
        "Resources": [project(r, attributes=query.attributes, excluded=query.excluded,
                              kind=kind) for r in resources],
    }


# ---- reading users


def render_users(session: Session, identities: Sequence[Identity], base: str
                 ) -> list[dict[str, Any]]:
    """The SCIM representations of ``identities`` (managers and groups loaded in bulk)."""
    managers = repo.by_ids(session, {i.manager_id for i in identities if i.manager_id})
    groups = repo.groups_of(session, [i.id for i in identities])
    return [user_resource(i, base=base, manager=managers.get(i.manager_id)
                          if i.manager_id else None, groups=groups.get(i.id, ()))
            for i in identities]


def _parse_id(user_id: str, what: str = "User") -> uuid.UUID:
    try:
        return uuid.UUID(user_id)
    except ValueError as exc:
        raise not_found(f"{what} {user_id} does not exist") from exc


def load_user(session: Session, user_id: str) -> Identity:
    """The identity behind a SCIM id, unless unknown or deleted through SCIM (404)."""
    identity = session.scalars(repo.visible_users().where(
        Identity.id == _parse_id(user_id))).first()
    if identity is None:
        raise not_found(f"User {user_id} does not exist")
    return identity


def get_user(session: Session, *, user_id: str, base: str) -> dict[str, Any]:
    """One User."""
    return render_users(session, [load_user(session, user_id)], base)[0]


def list_users(session: Session, *, query: ListQuery, base: str) -> dict[str, Any]:
    """Users matching a filter, one page (startIndex/count) at a time."""
    return list_resources(session, stmt=repo.visible_users(), kind=schemas.USER_KIND,
                          query=query, id_column=Identity.id,
                          render=lambda rows: render_users(session, rows, base))


def check_version(resource: dict[str, Any], if_match: str | None) -> None:
    """412 when ``If-Match`` names none of the current version (weak comparison)."""
    if not if_match:
        return
    wanted = {t.strip().removeprefix("W/") for t in if_match.split(",")}
    if "*" in wanted:
        return
    if resource["meta"]["version"].removeprefix("W/") not in wanted:
        raise ScimError(412, "the resource changed since that version (If-Match)")


# ---- writing users through the HR feed


def _run(session: Session, values: dict[str, Any], *, partial: bool, actor: Actor,
         clock: Clock) -> None:
    record = WorkerRecord(row=1, values=values, partial=partial)
    run = run_feed(session, source=scim_source(session),
                   parsed=ParsedFeed(records=[record], rows=1), mode="delta", channel="scim",
                   actor=actor, clock=clock)
    if run.errors:
        raise invalid_value("; ".join(str(e.get("message")) for e in run.errors))
    if run.state != "applied":
        raise ScimError(409, f"the HR feed run {run.id} was not applied ({run.state}: "
                             f"{run.hold_reason or 'see /hr/runs'})")


def _manager_employee_id(session: Session, ui: UserInput) -> str | None:
    if ui.manager_ref is None:
        return None
    try:
        manager_id = uuid.UUID(ui.manager_ref)
    except ValueError as exc:
        raise invalid_value(f"manager {ui.manager_ref!r} is not a User id") from exc
    manager = repo.by_ids(session, [manager_id]).get(manager_id)
    if manager is None:
        raise invalid_value(f"manager {ui.manager_ref} is not a known User")
    return manager.employee_id


def _attributes(current: dict[str, Any], ui: UserInput) -> dict[str, str]:
    merged = {k: v for k, v in current.items() if k != DELETED_MARK}
    for key, value in ui.organisation.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    return {k: str(v) for k, v in merged.items()}


def _values(session: Session, ui: UserInput, identity: Identity | None,
            clock: Clock) -> dict[str, Any]:
    """The record fields of ``ui``; only those that change when ``identity`` exists."""
    values: dict[str, Any] = dict(ui.fields)
    values["manager_employee_id"] = _manager_employee_id(session, ui)
    values["attributes"] = _attributes(identity.attributes if identity else {}, ui)
    if identity is not None:
        current_manager = None
        if identity.manager_id is not None:
            found = repo.by_ids(session, [identity.manager_id]).get(identity.manager_id)
            current_manager = found.employee_id if found else None
        current = {name: getattr(identity, name) for name in ui.fields}
        current["manager_employee_id"] = current_manager
        current["attributes"] = {k: str(v) for k, v in (identity.attributes or {}).items()}
        values = {k: v for k, v in values.items() if current.get(k) != v}
        terminated = identity.lifecycle_state == "terminated"
        if ui.active is True and terminated:
            values["termination_date"] = None  # a rehire
        elif ui.active is False and not terminated:
            values.update(termination_date=clock.now().date(), termination_immediate=True)
    elif ui.active is False:
        values.update(termination_date=clock.now().date(), termination_immediate=True)
    return values


def _link(session: Session, identity: Identity, *, external_id: str | None,
          undelete: bool, actor: Actor, clock: Clock) -> None:
    """What the HR record does not carry: externalId, and the SCIM deletion mark."""
    changes: dict[str, Any] = {}
    if identity.external_id != external_id:
        changes["external_id"] = external_id
    if undelete and DELETED_MARK in (identity.attributes or {}):
        changes["attributes"] = {k: v for k, v in identity.attributes.items()
                                 if k != DELETED_MARK}
    if changes:
        apply_changes(session, identity, changes, action="scim.user_link",
                      object_type="identity", actor=actor, clock=clock)


def _write(session: Session, *, ui: UserInput, identity: Identity | None, employee_id: str,
           undelete: bool, actor: Actor, clock: Clock, base: str) -> dict[str, Any]:
    if repo.user_name_taken(session, ui.fields["user_name"],
                            exclude=identity.id if identity else None):
        raise uniqueness(f"userName {ui.fields['user_name']!r} is already taken")
    values = _values(session, ui, identity, clock)
    if values:
        _run(session, {"employee_id": employee_id, **values}, partial=identity is not None,
             actor=actor, clock=clock)
    found = repo.by_employee_id(session, employee_id)
    if found is None:
        raise invalid_value(f"the HR feed did not create employee {employee_id}")
    session.refresh(found)
    _link(session, found, external_id=ui.external_id, undelete=undelete, actor=actor,
          clock=clock)
    return render_users(session, [found], base)[0]


def create_user(session: Session, *, body: Any, base: str, actor: Actor,
                clock: Clock) -> dict[str, Any]:
    """POST /Users: a joiner, or the rehire of a terminated (or SCIM-deleted) employee."""
    ui = user_input(normalise(body, schemas.USER_KIND))
    employee_id = ui.employee_number or ui.external_id or ui.fields["user_name"]
    existing = repo.by_employee_id(session, employee_id)
    if existing is not None and existing.lifecycle_state != "terminated" and \
            DELETED_MARK not in (existing.attributes or {}):
        raise uniqueness(f"a User with employeeNumber {employee_id!r} already exists")
    if existing is not None and ui.active is None:
        ui = UserInput(**{**ui.__dict__, "active": True})
    return _write(session, ui=ui, identity=existing, employee_id=employee_id, undelete=True,
                  actor=actor, clock=clock, base=base)


def _replace(session: Session, identity: Identity, doc: dict[str, Any], *, actor: Actor,
             clock: Clock, base: str) -> dict[str, Any]:
    ui = user_input(doc)
    if ui.employee_number is not None and ui.employee_number != identity.employee_id:
        raise mutability("employeeNumber is the HR key and cannot change")
    return _write(session, ui=ui, identity=identity, employee_id=identity.employee_id,
                  undelete=False, actor=actor, clock=clock, base=base)


def replace_user(session: Session, *, user_id: str, body: Any, if_match: str | None,
                 base: str, actor: Actor, clock: Clock) -> dict[str, Any]:
    """PUT /Users/{id}: the representation replaces the SCIM-mapped fields."""
    identity = load_user(session, user_id)
    check_version(render_users(session, [identity], base)[0], if_match)
    return _replace(session, identity, normalise(body, schemas.USER_KIND), actor=actor,
                    clock=clock, base=base)


def patch_user(session: Session, *, user_id: str, body: Any, if_match: str | None,
               base: str, actor: Actor, clock: Clock) -> dict[str, Any]:
    """PATCH /Users/{id}: the operations applied to the current representation."""
    identity = load_user(session, user_id)
    current = render_users(session, [identity], base)[0]
    check_version(current, if_match)
    patched = apply_patch(current, body, schemas.USER_KIND)
    return _replace(session, identity, normalise(patched, schemas.USER_KIND), actor=actor,
                    clock=clock, base=base)


def delete_user(session: Session, *, user_id: str, if_match: str | None, base: str,
                actor: Actor, clock: Clock) -> None:
    """DELETE /Users/{id}: terminate with immediate effect, then hide from SCIM."""
    identity = load_user(session, user_id)
    check_version(render_users(session, [identity], base)[0], if_match)
    if identity.lifecycle_state != "terminated":
        _run(session, {"employee_id": identity.employee_id,
                       "termination_date": clock.now().date(), "termination_immediate": True},
             partial=True, actor=actor, clock=clock)
        session.refresh(identity)
    apply_changes(session, identity,
                  {"attributes": {**(identity.attributes or {}),
                                  DELETED_MARK: clock.now().isoformat()}},
                  action="scim.user_delete", object_type="identity", actor=actor, clock=clock)
