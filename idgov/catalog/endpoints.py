"""/entitlements, /roles (with their composition) and /sod-rules: thin endpoints."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response

from idgov.auth.caller import Caller
from idgov.catalog import composition, impact, service, sod
from idgov.catalog.schemas import (
    EntitlementCreate,
    EntitlementFilter,
    EntitlementPage,
    EntitlementRead,
    EntitlementUpdate,
    InclusionCreate,
    InclusionRead,
    RoleCreate,
    RoleDetail,
    RoleEntitlementCreate,
    RoleEntitlementRead,
    RoleFilter,
    RoleImpactIn,
    RoleImpactOut,
    RolePage,
    RoleRead,
    RoleUpdate,
    SodExceptionCreate,
    SodExceptionFilter,
    SodExceptionPage,
    SodExceptionRead,
    SodExceptionRevoke,
    SodRuleCreate,
    SodRuleFilter,
    SodRulePage,
    SodRuleRead,
    SodRuleUpdate,
)
from idgov.web.deps import ClockDep, DbSession, require
from idgov.web.schemas import problem_responses

Reader = Annotated[Caller, Depends(require("catalog:read"))]
Writer = Annotated[Caller, Depends(require("catalog:write"))]
SodReader = Annotated[Caller, Depends(require("sod:read"))]
SodWriter = Annotated[Caller, Depends(require("sod:write"))]
Reason = Annotated[str, Query(min_length=1, max_length=2000,
                              description="Why the link ends (kept with the history)")]

entitlements = APIRouter(prefix="/entitlements", tags=["entitlements"])
roles = APIRouter(prefix="/roles", tags=["roles"])
sod_rules = APIRouter(prefix="/sod-rules", tags=["sod"])

# --- /entitlements ------------------------------------------------------------------------


@entitlements.get("", response_model=EntitlementPage, responses=problem_responses())
def list_entitlements(session: DbSession, _caller: Reader,
                      filters: Annotated[EntitlementFilter, Query()]) -> EntitlementPage:
    page = service.list_entitlements(session, filters=filters)
    return EntitlementPage(items=[EntitlementRead.model_validate(e) for e in page.items],
                           next_cursor=page.next_cursor)


@entitlements.post("", status_code=201, response_model=EntitlementRead,
                   responses=problem_responses(409))
def create_entitlement(session: DbSession, caller: Writer, clock: ClockDep,
                       entitlement_in: EntitlementCreate) -> EntitlementRead:
    """Add an entitlement; 422 when ``application_id`` names nothing, 409 on a duplicate
    ``native_id`` within the application."""
    entitlement = service.create_entitlement(session, entitlement_in=entitlement_in,
                                             actor=caller.actor, clock=clock)
    return EntitlementRead.model_validate(entitlement)


@entitlements.get("/{entitlement_id}", response_model=EntitlementRead,
                  responses=problem_responses(404))
def get_entitlement(session: DbSession, _caller: Reader,
                    entitlement_id: uuid.UUID) -> EntitlementRead:
    return EntitlementRead.model_validate(
        service.get_entitlement(session, entitlement_id=entitlement_id))


@entitlements.patch("/{entitlement_id}", response_model=EntitlementRead,
                    responses=problem_responses(404, 409))
def update_entitlement(session: DbSession, caller: Writer, clock: ClockDep,
                       entitlement_id: uuid.UUID,
                       entitlement_in: EntitlementUpdate) -> EntitlementRead:
    entitlement = service.update_entitlement(session, entitlement_id=entitlement_id,
                                             entitlement_in=entitlement_in, actor=caller.actor,
                                             clock=clock)
    return EntitlementRead.model_validate(entitlement)


@entitlements.delete("/{entitlement_id}", status_code=204, responses=problem_responses(404, 409))
def delete_entitlement(session: DbSession, caller: Writer, clock: ClockDep,
                       entitlement_id: uuid.UUID) -> Response:
    """Delete an entitlement created by mistake.

    Refused with 409 when it is held (``active_assignments`` gives the count) or has any
    history: past assignments, composition links (open or ended) or SoD rule items. History
    reconstructs past access, so a used entitlement is retired instead: PATCH
    ``requestable=false`` and end-date the role links that grant it.
    """
    service.delete_entitlement(session, entitlement_id=entitlement_id, actor=caller.actor,
                               clock=clock)
    return Response(status_code=204)


# --- /roles ----------------------------------------------------------------------------------


@roles.get("", response_model=RolePage, responses=problem_responses())
def list_roles(session: DbSession, _caller: Reader,
               filters: Annotated[RoleFilter, Query()]) -> RolePage:
    page = service.list_roles(session, filters=filters)
    return RolePage(items=[RoleRead.model_validate(r) for r in page.items],
                    next_cursor=page.next_cursor)


@roles.post("", status_code=201, response_model=RoleRead, responses=problem_responses(409))
def create_role(session: DbSession, caller: Writer, clock: ClockDep,
                role_in: RoleCreate) -> RoleRead:
    """Add a role; 409 when the name is taken."""
    role = service.create_role(session, role_in=role_in, actor=caller.actor, clock=clock)
    return RoleRead.model_validate(role)


@roles.get("/{role_id}", response_model=RoleDetail, responses=problem_responses(404))
def get_role(session: DbSession, _caller: Reader, clock: ClockDep,
             role_id: uuid.UUID) -> RoleDetail:
    """A role with the roles and entitlements it includes now, each with its link."""
    role, included, granted = service.get_role_detail(session, role_id=role_id, clock=clock)
    return RoleDetail.model_validate({
        **RoleRead.model_validate(role).model_dump(),
        "included_roles": [{"link_id": link.id, "valid_from": link.valid_from,
                            "valid_until": link.valid_until, "role": child}
                           for link, child in included],
        "entitlements": [{"link_id": link.id, "valid_from": link.valid_from,
                          "valid_until": link.valid_until, "entitlement": ent}
                         for link, ent in granted],
    })


@roles.patch("/{role_id}", response_model=RoleRead, responses=problem_responses(404, 409))
def update_role(session: DbSession, caller: Writer, clock: ClockDep, role_id: uuid.UUID,
                role_in: RoleUpdate) -> RoleRead:
    """Change a role; ``requestable=false`` retires it from the catalog."""
    role = service.update_role(session, role_id=role_id, role_in=role_in, actor=caller.actor,
                               clock=clock)
    return RoleRead.model_validate(role)


@roles.delete("/{role_id}", status_code=204, responses=problem_responses(404, 409))
def delete_role(session: DbSession, caller: Writer, clock: ClockDep,
                role_id: uuid.UUID) -> Response:
    """Delete a role created by mistake.

    Refused with 409 when it is held (``active_assignments`` gives the count) or has any
    history: past assignments, composition links in either direction (open or ended) or SoD
    rule items. Composition links are end-dated, never deleted, so a role that was ever
    composed or assigned stays; retire it with PATCH ``requestable=false`` and end-date its
    links.
    """
    service.delete_role(session, role_id=role_id, actor=caller.actor, clock=clock)
    return Response(status_code=204)


@roles.post("/{role_id}/impact", response_model=RoleImpactOut,
            responses=problem_responses(404))
def preview_impact(session: DbSession, _caller: Writer, clock: ClockDep, role_id: uuid.UUID,
                   proposal: RoleImpactIn) -> RoleImpactOut:
    """Preview a composition change, saving nothing: which holders gain or lose which
    entitlements, the SoD violations it would create, and how many provisioning operations
    saving it (through the composition endpoints) would record. 422 for unknown ids, links
    to add that exist, links to end that do not, and an inclusion that would make a cycle."""
    result = impact.preview(session, role_id=role_id, proposal=proposal, clock=clock)
    return RoleImpactOut.model_validate(result.as_dict())


@roles.post("/{role_id}/included-roles", status_code=201, response_model=InclusionRead,
            responses=problem_responses(404, 409))
def include_role(session: DbSession, caller: Writer, clock: ClockDep, role_id: uuid.UUID,
                 inclusion_in: InclusionCreate) -> InclusionRead:
    """Include another role; 422 naming the cycle when it would make one, 409 if present."""
    link = composition.include_role(session, role_id=role_id, inclusion_in=inclusion_in,
                                    actor=caller.actor, clock=clock)
    return InclusionRead.model_validate(link)


@roles.delete("/{role_id}/included-roles/{child_role_id}", response_model=InclusionRead,
              responses=problem_responses(404))
def end_inclusion(session: DbSession, caller: Writer, clock: ClockDep, role_id: uuid.UUID,
                  child_role_id: uuid.UUID, reason: Reason) -> InclusionRead:
    """End-date the inclusion now with ``reason``; the link is kept, never deleted."""
    link = composition.end_inclusion(session, role_id=role_id, child_role_id=child_role_id,
                                     reason=reason, actor=caller.actor, clock=clock)
    return InclusionRead.model_validate(link)


@roles.post("/{role_id}/entitlements", status_code=201, response_model=RoleEntitlementRead,
            responses=problem_responses(404, 409))
def add_entitlement(session: DbSession, caller: Writer, clock: ClockDep, role_id: uuid.UUID,
                    link_in: RoleEntitlementCreate) -> RoleEntitlementRead:
    """Make the role grant an entitlement; 409 when it already does."""
    link = composition.add_entitlement(session, role_id=role_id, link_in=link_in,
                                       actor=caller.actor, clock=clock)
    return RoleEntitlementRead.model_validate(link)


@roles.delete("/{role_id}/entitlements/{entitlement_id}", response_model=RoleEntitlementRead,
              responses=problem_responses(404))
def end_entitlement(session: DbSession, caller: Writer, clock: ClockDep, role_id: uuid.UUID,
                    entitlement_id: uuid.UUID, reason: Reason) -> RoleEntitlementRead:
    """End-date the role -> entitlement link now with ``reason``; the link is kept."""
    link = composition.end_entitlement(session, role_id=role_id, entitlement_id=entitlement_id,
                                       reason=reason, actor=caller.actor, clock=clock)
    return RoleEntitlementRead.model_validate(link)


# --- /sod-rules ------------------------------------------------------------------------------


@sod_rules.get("", response_model=SodRulePage, responses=problem_responses())
def list_sod_rules(session: DbSession, _caller: SodReader,
                   filters: Annotated[SodRuleFilter, Query()]) -> SodRulePage:
    page = sod.list_rules(session, filters=filters)
    return SodRulePage(items=[SodRuleRead.model_validate(r) for r in page.items],
                       next_cursor=page.next_cursor)


@sod_rules.post("", status_code=201, response_model=SodRuleRead,
                responses=problem_responses(409))
def create_sod_rule(session: DbSession, caller: SodWriter, clock: ClockDep,
                    rule_in: SodRuleCreate) -> SodRuleRead:
    """Add a rule: holding any item of ``side_a`` with any item of ``side_b`` conflicts."""
    return SodRuleRead.model_validate(
        sod.create_rule(session, rule_in=rule_in, actor=caller.actor, clock=clock))


@sod_rules.get("/{rule_id}", response_model=SodRuleRead, responses=problem_responses(404))
def get_sod_rule(session: DbSession, _caller: SodReader, rule_id: uuid.UUID) -> SodRuleRead:
    return SodRuleRead.model_validate(sod.get_rule(session, rule_id=rule_id))


@sod_rules.patch("/{rule_id}", response_model=SodRuleRead,
                 responses=problem_responses(404, 409))
def update_sod_rule(session: DbSession, caller: SodWriter, clock: ClockDep, rule_id: uuid.UUID,
                    rule_in: SodRuleUpdate) -> SodRuleRead:
    """Change a rule; a side given replaces that side; ``enabled=false`` retires it."""
    return SodRuleRead.model_validate(
        sod.update_rule(session, rule_id=rule_id, rule_in=rule_in, actor=caller.actor,
                        clock=clock))


@sod_rules.delete("/{rule_id}", status_code=204, responses=problem_responses(404, 409))
def delete_sod_rule(session: DbSession, caller: SodWriter, clock: ClockDep,
                    rule_id: uuid.UUID) -> Response:
    """Delete a rule created by mistake; 409 once an exception was granted under it (the
    rule is then evidence: disable it with ``enabled=false``)."""
    sod.delete_rule(session, rule_id=rule_id, actor=caller.actor, clock=clock)
    return Response(status_code=204)


@sod_rules.get("/{rule_id}/exceptions", response_model=SodExceptionPage,
               responses=problem_responses(404))
def list_sod_exceptions(session: DbSession, _caller: SodReader, clock: ClockDep,
                        rule_id: uuid.UUID,
                        filters: Annotated[SodExceptionFilter, Query()]) -> SodExceptionPage:
    page = sod.list_exceptions(session, rule_id=rule_id, filters=filters, clock=clock)
    return SodExceptionPage(items=[SodExceptionRead.model_validate(e) for e in page.items],
                            next_cursor=page.next_cursor)


@sod_rules.post("/{rule_id}/exceptions", status_code=201, response_model=SodExceptionRead,
                responses=problem_responses(404, 409))
def grant_sod_exception(session: DbSession, caller: SodWriter, clock: ClockDep,
                        rule_id: uuid.UUID,
                        exception_in: SodExceptionCreate) -> SodExceptionRead:
    """Grant an exception; 409 when the rule allows none or one is already active."""
    return SodExceptionRead.model_validate(
        sod.grant_exception(session, rule_id=rule_id, exception_in=exception_in,
                            actor=caller.actor, clock=clock))


@sod_rules.post("/{rule_id}/exceptions/{exception_id}/revoke", response_model=SodExceptionRead,
                responses=problem_responses(404, 409))
def revoke_sod_exception(session: DbSession, caller: SodWriter, clock: ClockDep,
                         rule_id: uuid.UUID, exception_id: uuid.UUID,
                         revoke_in: SodExceptionRevoke) -> SodExceptionRead:
    """Revoke an active exception with a reason; 409 when already revoked or expired."""
    return SodExceptionRead.model_validate(
        sod.revoke_exception(session, rule_id=rule_id, exception_id=exception_id,
                             reason=revoke_in.reason, actor=caller.actor, clock=clock))


router = APIRouter()
router.include_router(entitlements)
router.include_router(roles)
router.include_router(sod_rules)
