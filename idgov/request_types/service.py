"""Request types: the kinds of request, each with its form and its approval policy.

Services flush, audit, never commit. A type some request uses is evidence of how that request
was handled: it cannot be deleted (409), only retired with ``active=false``.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.orm import Session

from idgov.audit.service import apply_changes, record, snapshot
from idgov.clock import Clock
from idgov.db.repository import Page, get_or_404, paginate, require_exists
from idgov.errors import Conflict, FieldError, InUse, InvalidInput, NotFound
from idgov.models.identity import Group
from idgov.models.requests import RequestType
from idgov.request_types import repository
from idgov.request_types.schemas import (
    RequestTypeCreate,
    RequestTypeFilter,
    RequestTypeUpdate,
    StageIn,
)
from idgov.requests.forms import check_form_schema
from idgov.types import Actor

_NOT_NULL = ("name", "form_schema", "approval_stages", "automatic_classifications",
             "duration_required", "approval_sla_hours", "active")


def _stages(stages: list[StageIn]) -> list[dict[str, Any]]:
    return [{"approver": s.approver, "group_id": str(s.group_id) if s.group_id else None,
             "mode": s.mode} for s in stages]


def _check_groups(session: Session, stages: list[StageIn] | None,
                  dual_control_group_id: uuid.UUID | None) -> None:
    for n, stage in enumerate(stages or []):
        require_exists(session, Group, stage.group_id, f"approval_stages.{n}.group_id")
    require_exists(session, Group, dual_control_group_id, "dual_control_group_id")


def list_request_types(session: Session, *, filters: RequestTypeFilter) -> Page[RequestType]:
    return paginate(session, repository.list_query(filters), RequestType, limit=filters.limit,
                    cursor=filters.cursor)


def get_request_type(session: Session, *, key_or_id: str) -> RequestType:
    """A type by its id or its key, or NotFound."""
    try:
        type_id = uuid.UUID(key_or_id)
    except ValueError:
        found = repository.by_key(session, key_or_id)
        if found is None:
            raise NotFound(f"request type {key_or_id!r} does not exist") from None
        return found
    return get_or_404(session, RequestType, type_id, what="request type")


def create_request_type(session: Session, *, type_in: RequestTypeCreate, actor: Actor,
                        clock: Clock) -> RequestType:
    """Add a request type; 409 when the key is taken, 422 for an invalid form schema."""
    if repository.key_taken(session, type_in.key):
        raise Conflict(f"a request type with key {type_in.key!r} already exists", field="key")
    check_form_schema(type_in.form_schema)
    _check_groups(session, type_in.approval_stages, type_in.dual_control_group_id)
    now = clock.now()
    row = RequestType(**type_in.model_dump(exclude={"approval_stages"}),
                      approval_stages=_stages(type_in.approval_stages),
                      created_at=now, updated_at=now)
    session.add(row)
    session.flush()
    record(session, actor=actor, action="request_type.create", object_type="request_type",
           object_id=row.id, clock=clock, after=snapshot(row))
    return row


def update_request_type(session: Session, *, key_or_id: str, type_in: RequestTypeUpdate,
                        actor: Actor, clock: Clock) -> RequestType:
    """Change the given fields; a new form applies to requests submitted from now on."""
    row = get_request_type(session, key_or_id=key_or_id)
    changes = type_in.model_dump(exclude_unset=True, exclude={"approval_stages"})
    bad = [f for f in _NOT_NULL if f in type_in.model_fields_set
           and getattr(type_in, f) is None]
    if bad:
        raise InvalidInput("these fields cannot be null",
                           errors=[FieldError(f, "cannot be null") for f in bad])
    if "form_schema" in changes:
        check_form_schema(changes["form_schema"])
    _check_groups(session, type_in.approval_stages, type_in.dual_control_group_id)
    if type_in.approval_stages is not None:
        changes["approval_stages"] = _stages(type_in.approval_stages)
    apply_changes(session, row, changes, action="request_type.update",
                  object_type="request_type", actor=actor, clock=clock)
    return row


def delete_request_type(session: Session, *, key_or_id: str, actor: Actor,
                        clock: Clock) -> None:
    """Delete a type no request ever used; otherwise InUse (retire it with active=false)."""
    row = get_request_type(session, key_or_id=key_or_id)
    used = repository.request_count(session, row.id)
    if used:
        raise InUse(f"request type {row.key!r} is used by {used} request(s): retire it with "
                    "active=false instead", requests=used)
    before = snapshot(row)
    session.delete(row)
    session.flush()
    record(session, actor=actor, action="request_type.delete", object_type="request_type",
           object_id=row.id, clock=clock, before=before)
