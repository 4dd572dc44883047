"""Administrator page of catalog changes (/ui/admin/catalog): choose a role, propose
entitlements it would grant or stop granting, preview the impact (who gains or loses what,
new SoD violations, how many provisioning operations), then save the change.

Same services and capability as ``POST /roles/{id}/impact`` and the composition endpoints
(``catalog:write``, administrators): the preview saves nothing; saving adds and end-dates
links through :mod:`idgov.catalog.composition` (audited there), ending with a reason.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy import or_, select
from sqlalchemy.orm import Session
from starlette.datastructures import FormData
from starlette.responses import RedirectResponse, Response

from idgov.auth.caller import Caller
from idgov.catalog import composition, impact
from idgov.catalog.schemas import RoleEntitlementCreate, RoleImpactIn, RoleImpactOut
from idgov.clock import Clock
from idgov.errors import FieldError, InvalidInput
from idgov.models.catalog import Entitlement, Role, RoleEntitlement
from idgov.ui import lookup
from idgov.ui.deps import CheckedForm, page_require, page_router
from idgov.ui.lookup import WorkSession
from idgov.ui.registry import NavItem, register_nav
from idgov.ui.render import field_errors, render
from idgov.ui.session import flash
from idgov.web.deps import ClockDep, DbSession

router = page_router(prefix="/ui/admin/catalog")
register_nav(NavItem(key="admin-catalog", label="Catalog changes", href="/ui/admin/catalog",
                     capabilities=("catalog:write",), order=630))

Writer = Annotated[Caller, Depends(page_require("catalog:write"))]


def _choices(session: Session, role_id: uuid.UUID | None, clock: Clock) -> dict[str, Any]:
    roles = session.execute(select(Role.id, Role.name).order_by(Role.name)).all()
    entitlements = session.execute(select(Entitlement.id, Entitlement.name)
                                   .order_by(Entitlement.name)).all()
    granted: list[Any] = []
    now = clock.now()
    if role_id is not None:
        granted = list(session.execute(
            select(Entitlement.id, Entitlement.name)
            .join(RoleEntitlement, RoleEntitlement.entitlement_id == Entitlement.id)
            .where(RoleEntitlement.role_id == role_id,
                   RoleEntitlement.valid_from <= now,
                   or_(RoleEntitlement.valid_until.is_(None),
                       RoleEntitlement.valid_until > now)).order_by(Entitlement.name)).all())
    return {"roles": roles, "entitlements": entitlements, "granted": granted}


def _proposal(form: FormData) -> tuple[uuid.UUID, RoleImpactIn]:
    try:
        role_id = uuid.UUID(lookup.text(form, "role_id"))
    except ValueError as exc:
        raise InvalidInput("choose a role", errors=[FieldError("role_id", "choose a role")]) \
            from exc
    proposal = lookup.parsed(RoleImpactIn, {
        "add_entitlements": [str(v) for v in form.getlist("add_entitlements") if v],
        "end_entitlements": [str(v) for v in form.getlist("end_entitlements") if v]})
    return role_id, proposal


def _page(request: Request, session: Session, clock: Clock, *, form: FormData | None = None,
          preview: RoleImpactOut | None = None, errors: dict[str, str] | None = None,
          status_code: int = 200) -> Response:
    raw = lookup.text(form, "role_id") if form is not None else \
        str(request.query_params.get("role_id") or "")
    try:
        role_id: uuid.UUID | None = uuid.UUID(raw) if raw else None
    except ValueError:
        role_id = None
    chosen = {"role_id": raw,
              "add": [str(v) for v in form.getlist("add_entitlements")] if form else [],
              "end": [str(v) for v in form.getlist("end_entitlements")] if form else [],
              "reason": lookup.text(form, "reason") if form else ""}
    return render(request, "admin/catalog.html", status_code=status_code,
                  title="Catalog changes", chosen=chosen, preview=preview,
                  apps=lookup.application_names(session, [
                      g.entitlement.application_id for c in (preview.changes if preview else [])
                      for g in (*c.gains, *c.losses)]),
                  errors=errors or {}, **_choices(session, role_id, clock))


@router.get("")
def catalog(request: Request, session: DbSession, caller: Writer, clock: ClockDep) -> Response:
    """Choose a role and propose a change of what it grants."""
    return _page(request, session, clock)


@router.post("/preview")
def preview(request: Request, session: WorkSession, caller: Writer, clock: ClockDep,
            form: CheckedForm) -> Response:
    """The impact of the proposed change; nothing is saved."""
    try:
        role_id, proposal = _proposal(form)
        result = impact.preview(session, role_id=role_id, proposal=proposal, clock=clock)
    except InvalidInput as exc:
        session.rollback()
        return _page(request, session, clock, form=form, errors=field_errors(exc),
                     status_code=422)
    return _page(request, session, clock, form=form,
                 preview=RoleImpactOut.model_validate(result.as_dict()))


@router.post("/save")
def save(request: Request, session: WorkSession, caller: Writer, clock: ClockDep,
         form: CheckedForm) -> Response:
    """Save the previewed change: add and end-date the links (ending needs a reason)."""
    try:
        role_id, proposal = _proposal(form)
        reason = lookup.text(form, "reason")
        if proposal.end_entitlements and not reason:
            raise InvalidInput("a reason is needed to end a link", errors=[
                FieldError("reason", "say why the role stops granting these")])
        for entitlement_id in proposal.add_entitlements:
            composition.add_entitlement(
                session, role_id=role_id, actor=caller.actor, clock=clock,
                link_in=RoleEntitlementCreate(entitlement_id=entitlement_id))
        for entitlement_id in proposal.end_entitlements:
            composition.end_entitlement(session, role_id=role_id, entitlement_id=entitlement_id,
                                        reason=reason, actor=caller.actor, clock=clock)
    except InvalidInput as exc:
        session.rollback()
        return _page(request, session, clock, form=form, errors=field_errors(exc),
                     status_code=422)
    flash(request, "The role's composition is saved; its holders' access follows.",
          "success")
    return RedirectResponse(f"/ui/admin/catalog?role_id={role_id}", status_code=303)
