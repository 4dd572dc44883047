"""Requester pages: the catalog with search, and the dynamic form of a request type.

The form is generated from the type's JSON Schema (``idgov.ui.forms``) and posted to
``requests.service.create_request``, the service behind ``POST /requests``: the same checks
(form schema, durations, duplicates, SoD), the same errors, shown at their fields.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import Depends, Query, Request
from pydantic import ValidationError
from sqlalchemy.orm import Session
from starlette.responses import RedirectResponse, Response

from idgov.auth.caller import Caller
from idgov.catalog import service as catalog
from idgov.catalog.schemas import EntitlementFilter, RoleFilter
from idgov.errors import Conflict, FieldError, InvalidInput, NotFound
from idgov.models.requests import RequestType
from idgov.request_types import service as request_types
from idgov.request_types.schemas import RequestTypeFilter
from idgov.requests import service as requests
from idgov.requests.schemas import RequestCreate
from idgov.ui import registry
from idgov.ui.deps import CheckedForm, PageSession, page_require, page_router
from idgov.ui.forms import fields_of, form_data_from, posted_values
from idgov.ui.render import field_errors, render
from idgov.ui.repository import application_names
from idgov.ui.session import flash
from idgov.web.deps import ClockDep, Ctx

router = page_router()

CatalogReader = Annotated[Caller, Depends(page_require("catalog:read"))]
Requester = Annotated[Caller, Depends(page_require("requests:create"))]
Search = Annotated[str | None, Query(max_length=100)]


@router.get("/catalog")
def catalog_page(request: Request, session: PageSession, caller: CatalogReader,
                 q: Search = None) -> Response:
    """Requestable roles and entitlements whose name (or description) contains ``q``."""
    text = (q or "").strip() or None
    roles = catalog.list_roles(session, filters=RoleFilter(requestable=True, q=text, limit=50))
    ents = catalog.list_entitlements(session, filters=EntitlementFilter(
        requestable=True, q=text, limit=100))
    apps = application_names(session, {e.application_id for e in ents.items})
    return render(request, "catalog.html", title="Catalog", q=q or "", roles=roles.items,
                  entitlements=ents.items, apps=apps,
                  can_request=caller.can("requests:create"))


def _item(session: Session, item: str) -> dict[str, Any]:
    """The role or entitlement named ``role:<id>`` / ``entitlement:<id>``, as shown."""
    kind, _, raw = item.partition(":")
    try:
        item_id = uuid.UUID(raw)
    except ValueError:
        raise NotFound(f"catalog item {item!r} does not exist") from None
    if kind == "role":
        role = catalog.get_role(session, role_id=item_id)
        return {"key": item, "kind": "role", "id": role.id, "name": role.name,
                "description": role.description, "risk": None, "privileged": False,
                "application": None, "max_duration_days": None}
    if kind != "entitlement":
        raise NotFound(f"catalog item {item!r} does not exist")
    ent = catalog.get_entitlement(session, entitlement_id=item_id)
    app = application_names(session, {ent.application_id}).get(ent.application_id)
    return {"key": item, "kind": "entitlement", "id": ent.id, "name": ent.name,
            "description": ent.description, "risk": ent.risk, "privileged": ent.privileged,
            "application": app, "max_duration_days": ent.max_duration_days,
            "data_classification": ent.data_classification}


def _types(session: Session) -> list[RequestType]:
    return list(request_types.list_request_types(
        session, filters=RequestTypeFilter(active=True, limit=100)).items)


def _show_form(request: Request, session: Session, *, item: str, type_key: str | None,
               values: dict[str, str], errors: dict[str, str], detail: str | None = None,
               status_code: int = 200) -> Response:
    shown = _item(session, item)
    types = _types(session)
    chosen = next((t for t in types if t.key == type_key), None)
    if chosen is None and types:
        chosen = next((t for t in types if t.key == "application-access"), types[0])
    return render(request, "request_form.html", status_code=status_code, title="Request access",
                  item=shown, types=types, chosen=chosen,
                  fields=fields_of(chosen.form_schema) if chosen else [],
                  values=values, errors=errors, detail=detail)


@router.get("/requests/new")
def new_request(request: Request, session: PageSession, caller: Requester,
                item: Annotated[str, Query(max_length=100)],
                type: Annotated[str | None, Query(max_length=64)] = None) -> Response:
    """The form of the chosen request type for one catalog item."""
    return _show_form(request, session, item=item, type_key=type, values={}, errors={})


def _pydantic_errors(exc: ValidationError) -> list[FieldError]:
    return [FieldError(".".join(str(p) for p in err["loc"]) or "request", err["msg"])
            for err in exc.errors()]


@router.post("/requests/new")
def submit_new_request(request: Request, session: PageSession, caller: Requester,
                       clock: ClockDep, ctx: Ctx, form: CheckedForm) -> Response:
    """Submit the form: the service of ``POST /requests`` decides; errors come back at
    their fields with what was typed, nothing is saved."""
    item = str(form.get("item") or "")
    type_key = str(form.get("type") or "")
    posted = {k: str(v) for k, v in form.items()}
    shown = _item(session, item)
    rtype = request_types.get_request_type(session, key_or_id=type_key)
    data, problems = form_data_from(rtype.form_schema, posted)
    line: dict[str, Any] = {f"{shown['kind']}_id": str(shown["id"])}
    duration = posted.get("lines.0.duration_days", "").strip()
    if duration:
        if duration.isdigit():
            line["duration_days"] = int(duration)
        else:
            problems.append(FieldError("lines.0.duration_days", "must be a whole number of days"))
    try:
        if problems:
            raise InvalidInput("the form has errors", errors=problems)
        try:
            request_in = RequestCreate.model_validate({
                "request_type": rtype.key, "form_data": data, "lines": [line],
                "urgent": posted.get("urgent") == "true"})
        except ValidationError as exc:
            raise InvalidInput("the form has errors", errors=_pydantic_errors(exc)) from exc
        created = requests.create_request(session, request_in=request_in, caller=caller,
                                          window_days=ctx.settings.duplicate_expiry_window_days,
                                          clock=clock)
    except (InvalidInput, Conflict) as exc:
        session.rollback()  # nothing of the attempt is kept
        errors = field_errors(exc) if isinstance(exc, InvalidInput) else {}
        return _show_form(request, session, item=item, type_key=type_key,
                          values=posted_values(posted), errors=errors, detail=exc.detail,
                          status_code=422 if isinstance(exc, InvalidInput) else 409)
    flash(request, f"{created.number} is {created.state.replace('_', ' ')}.", "success")
    return RedirectResponse(f"/ui/requests/{created.id}", status_code=303)


registry.register_nav(registry.NavItem(key="catalog", label="Catalog", href="/ui/catalog",
                                       capabilities=("requests:create",), order=100,
                                       person_only=True))
