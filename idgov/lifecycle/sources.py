"""HR sources: the feeds HR delivers through, with their mapping, safety thresholds and
lifecycle timings. Services flush and audit, never commit; the queries are at the end."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from idgov.audit.service import apply_changes, record, snapshot
from idgov.clock import Clock
from idgov.db.repository import Page, get_or_404, paginate
from idgov.errors import Conflict, ErrorList, InUse, NotFound
from idgov.lifecycle.coercion import mapping_errors
from idgov.lifecycle.records import REQUIRED
from idgov.lifecycle.source_schemas import HrSourceCreate, HrSourceFilter, HrSourceUpdate
from idgov.lifecycle.timing import valid_zone
from idgov.models.hr import FeedRun, HrSource
from idgov.models.identity import Identity
from idgov.types import Actor

# Fields a PATCH may set to null; the others always hold a value.
_NULLABLE = frozenset({"description", "change_threshold"})


def _validate(state: Mapping[str, Any], changed: set[str] | None = None) -> None:
    """Check the rules pydantic cannot: the mapping, the zones, the fields that cannot be
    null. ``state`` is the source as it would be; ``changed`` the fields a PATCH names."""
    errors = ErrorList()
    for name in sorted(changed or ()):
        if name not in _NULLABLE and state.get(name) is None:
            errors.add(name, "cannot be null")
    mapping = state.get("column_mapping") or {}
    errors.items.extend(mapping_errors(mapping, prefix="column_mapping"))
    if mapping and state.get("kind") == "csv":
        for field in REQUIRED:
            if field not in mapping:
                errors.add(f"column_mapping.{field}", f"a CSV mapping names the column of "
                           f"{field} (the file is read only through the mapping)")
    zone = state.get("default_time_zone")
    if zone is not None and not valid_zone(zone):
        errors.add("default_time_zone", f"{zone!r} is not an IANA time zone")
    for location, location_zone in (state.get("location_time_zones") or {}).items():
        where = f"location_time_zones.{location}"
        if not str(location).strip():
            errors.add(where, "the location must be non-empty")
        if not isinstance(location_zone, str) or not valid_zone(location_zone):
            errors.add(where, f"{location_zone!r} is not an IANA time zone")
    errors.raise_if_any("the HR source is invalid")


def _check_name(session: Session, name: str, exclude: uuid.UUID | None) -> None:
    if name_taken(session, name, exclude=exclude):
        raise Conflict(f"an HR source named {name!r} already exists", field="name")


def get_source(session: Session, *, source_id: uuid.UUID) -> HrSource:
    """One HR source, or NotFound."""
    return get_or_404(session, HrSource, source_id, what="HR source")


def get_source_by_name(session: Session, name: str) -> HrSource:
    """The HR source called ``name`` (exactly, else ignoring case), or NotFound."""
    source = find_by_name(session, name)
    if source is None:
        raise NotFound(f"HR source {name!r} does not exist")
    return source


def list_sources(session: Session, *, filters: HrSourceFilter) -> Page[HrSource]:
    """HR sources matching ``filters``, one page at a time."""
    return paginate(session, list_query(filters), HrSource, limit=filters.limit,
                    cursor=filters.cursor)


def create_source(session: Session, *, source_in: HrSourceCreate, actor: Actor,
                  clock: Clock) -> HrSource:
    """Define an HR source; Conflict when the name is taken."""
    data = source_in.model_dump()
    _validate(data)
    _check_name(session, source_in.name, None)
    source = HrSource(**data)
    source.created_at = source.updated_at = clock.now()
    session.add(source)
    session.flush()
    record(session, actor=actor, action="hr_source.create", object_type="hr_source",
           object_id=source.id, clock=clock, after=snapshot(source))
    return source


def update_source(session: Session, *, source_id: uuid.UUID, source_in: HrSourceUpdate,
                  actor: Actor, clock: Clock) -> HrSource:
    """Change the given fields of an HR source (the next run reads them)."""
    source = get_source(session, source_id=source_id)
    changes = source_in.model_dump(exclude_unset=True)
    current = {column: getattr(source, column) for column in HrSourceCreate.model_fields}
    _validate({**current, **changes}, set(changes))
    if changes.get("name"):
        _check_name(session, changes["name"], source_id)
    apply_changes(session, source, changes, action="hr_source.update",
                  object_type="hr_source", actor=actor, clock=clock)
    return source


def delete_source(session: Session, *, source_id: uuid.UUID, actor: Actor,
                  clock: Clock) -> None:
    """Delete an HR source that nothing refers to; InUse (Conflict) once it has runs or
    identities, whose history names it: disable it instead."""
    source = get_source(session, source_id=source_id)
    runs, identities = usage(session, source_id)
    if runs or identities:
        raise InUse(f"HR source {source.name!r} has {runs} feed run(s) and {identities} "
                    "identities from it, whose history names it: disable it instead",
                    runs=runs, identities=identities)
    before = snapshot(source)
    session.delete(source)
    session.flush()
    record(session, actor=actor, action="hr_source.delete", object_type="hr_source",
           object_id=source_id, clock=clock, before=before)


# Queries ---------------------------------------------------------------------------------


def list_query(filters: HrSourceFilter) -> Select[HrSource]:
    stmt = select(HrSource)
    if filters.kind is not None:
        stmt = stmt.where(HrSource.kind == filters.kind)
    if filters.enabled is not None:
        stmt = stmt.where(HrSource.enabled == filters.enabled)
    return stmt


def name_taken(session: Session, name: str, *, exclude: uuid.UUID | None = None) -> bool:
    stmt = select(HrSource.id).where(func.lower(HrSource.name) == name.lower())
    if exclude is not None:
        stmt = stmt.where(HrSource.id != exclude)
    return session.scalar(stmt.limit(1)) is not None


def find_by_name(session: Session, name: str) -> HrSource | None:
    exact = session.scalars(select(HrSource).where(HrSource.name == name)).one_or_none()
    if exact is not None:
        return exact
    return session.scalars(select(HrSource).where(func.lower(HrSource.name) == name.lower())
                           .limit(1)).one_or_none()


def usage(session: Session, source_id: uuid.UUID) -> tuple[int, int]:
    """How many feed runs and identities refer to the source."""
    runs = session.scalar(select(func.count()).select_from(FeedRun)
                          .where(FeedRun.source_id == source_id)) or 0
    identities = session.scalar(select(func.count()).select_from(Identity)
                                .where(Identity.hr_source_id == source_id)) or 0
    return runs, identities
