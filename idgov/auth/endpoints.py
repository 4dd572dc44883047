"""/me, /service-principals, /tokens, /service-role-grants: thin endpoints over auth services."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response

from idgov.auth import service
from idgov.auth.caller import Caller
from idgov.auth.schemas import (
    GrantCreate,
    GrantFilter,
    GrantPage,
    GrantRead,
    MeRead,
    PrincipalCreate,
    PrincipalFilter,
    PrincipalPage,
    PrincipalRead,
    PrincipalUpdate,
    TokenCreate,
    TokenCreated,
    TokenFilter,
    TokenPage,
    TokenRead,
)
from idgov.web.deps import ClockDep, Ctx, DbSession, require
from idgov.web.schemas import problem_responses

router = APIRouter(tags=["callers"])

Me = Annotated[Caller, Depends(require("me:read"))]
Reader = Annotated[Caller, Depends(require("tokens:read"))]
Writer = Annotated[Caller, Depends(require("tokens:write"))]


@router.get("/me", response_model=MeRead, responses=problem_responses())
def who_am_i(session: DbSession, caller: Me) -> MeRead:
    """The caller: name, kind, the identity signed in, service roles and capabilities."""
    return MeRead.model_validate(service.describe_caller(session, caller=caller))


# Service principals -------------------------------------------------------------------------


@router.post("/service-principals", status_code=201, response_model=PrincipalRead,
             responses=problem_responses(409))
def create_principal(session: DbSession, caller: Writer, clock: ClockDep,
                     principal_in: PrincipalCreate) -> PrincipalRead:
    """Create a machine caller (an HR feed, a SIEM pull) with the roles its tokens may carry."""
    principal = service.create_principal(session, principal_in=principal_in,
                                         actor=caller.actor, clock=clock)
    return PrincipalRead.model_validate(principal)


@router.get("/service-principals", response_model=PrincipalPage,
            responses=problem_responses())
def list_principals(session: DbSession, caller: Reader,
                    filters: Annotated[PrincipalFilter, Query()]) -> PrincipalPage:
    page = service.list_principals(session, filters=filters)
    return PrincipalPage(items=[PrincipalRead.model_validate(p) for p in page.items],
                         next_cursor=page.next_cursor)


@router.get("/service-principals/{principal_id}", response_model=PrincipalRead,
            responses=problem_responses(404))
def get_principal(session: DbSession, caller: Reader, principal_id: uuid.UUID) -> PrincipalRead:
    return PrincipalRead.model_validate(service.get_principal(session, principal_id=principal_id))


@router.patch("/service-principals/{principal_id}", response_model=PrincipalRead,
              responses=problem_responses(404))
def update_principal(session: DbSession, caller: Writer, clock: ClockDep,
                     principal_id: uuid.UUID, principal_in: PrincipalUpdate) -> PrincipalRead:
    """Change roles, description or the disabled flag (a disabled principal's tokens fail)."""
    principal = service.update_principal(session, principal_id=principal_id,
                                         principal_in=principal_in, actor=caller.actor,
                                         clock=clock)
    return PrincipalRead.model_validate(principal)


# API tokens ---------------------------------------------------------------------------------


@router.post("/tokens", status_code=201, response_model=TokenCreated,
             responses=problem_responses())
def create_token(ctx: Ctx, session: DbSession, caller: Writer, clock: ClockDep,
                 token_in: TokenCreate) -> TokenCreated:
    """Issue an API token. The answer holds the token text: the only time it is shown."""
    text, row = service.create_token(session, token_in=token_in,
                                     default_days=ctx.settings.api_token_default_days,
                                     actor=caller.actor, clock=clock)
    return TokenCreated(token=text, **TokenRead.model_validate(row).model_dump())


@router.get("/tokens", response_model=TokenPage, responses=problem_responses())
def list_tokens(session: DbSession, caller: Reader, clock: ClockDep,
                filters: Annotated[TokenFilter, Query()]) -> TokenPage:
    page = service.list_tokens(session, filters=filters, clock=clock)
    return TokenPage(items=[TokenRead.model_validate(t) for t in page.items],
                     next_cursor=page.next_cursor)


@router.get("/tokens/{token_id}", response_model=TokenRead, responses=problem_responses(404))
def get_token(session: DbSession, caller: Reader, token_id: uuid.UUID) -> TokenRead:
    return TokenRead.model_validate(service.get_token(session, token_id=token_id))


@router.post("/tokens/{token_id}/revoke", response_model=TokenRead,
             responses=problem_responses(404, 409))
def revoke_token(session: DbSession, caller: Writer, clock: ClockDep,
                 token_id: uuid.UUID) -> TokenRead:
    """Revoke a token for good; it is refused from the next request on."""
    row = service.revoke_token(session, token_id=token_id, actor=caller.actor, clock=clock)
    return TokenRead.model_validate(row)


# Explicit service role grants ---------------------------------------------------------------


@router.post("/service-role-grants", status_code=201, response_model=GrantRead,
             responses=problem_responses(409))
def grant_role(session: DbSession, caller: Writer, clock: ClockDep,
               grant_in: GrantCreate) -> GrantRead:
    """Grant administrator, auditor or hr-system to a person."""
    grant = service.grant_role(session, grant_in=grant_in, actor=caller.actor, clock=clock)
    return GrantRead.model_validate(grant)


@router.get("/service-role-grants", response_model=GrantPage, responses=problem_responses())
def list_grants(session: DbSession, caller: Reader,
                filters: Annotated[GrantFilter, Query()]) -> GrantPage:
    page = service.list_grants(session, filters=filters)
    return GrantPage(items=[GrantRead.model_validate(g) for g in page.items],
                     next_cursor=page.next_cursor)


@router.delete("/service-role-grants/{grant_id}", status_code=204,
               responses=problem_responses(404))
def revoke_grant(session: DbSession, caller: Writer, clock: ClockDep,
                 grant_id: uuid.UUID) -> Response:
    """Take an explicit service role away (the audit trail keeps the grant)."""
    service.revoke_grant(session, grant_id=grant_id, actor=caller.actor, clock=clock)
    return Response(status_code=204)
