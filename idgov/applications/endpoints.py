"""/applications and /accounts: thin endpoints over the application and account services."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response

from idgov.applications import service
from idgov.applications.crypto import CredentialCipher
from idgov.applications.schemas import (
    AccountCreate,
    AccountFilter,
    AccountPage,
    AccountRead,
    AccountUpdate,
    ApplicationCreate,
    ApplicationFilter,
    ApplicationPage,
    ApplicationRead,
    ApplicationUpdate,
)
from idgov.auth.caller import Caller
from idgov.web.deps import ClockDep, Ctx, DbSession, require
from idgov.web.schemas import problem_responses

applications = APIRouter(prefix="/applications", tags=["applications"])
accounts = APIRouter(prefix="/accounts", tags=["accounts"])

CatalogReader = Annotated[Caller, Depends(require("catalog:read"))]
CatalogWriter = Annotated[Caller, Depends(require("catalog:write"))]
AccountReader = Annotated[Caller, Depends(require("accounts:read"))]
AccountWriter = Annotated[Caller, Depends(require("accounts:write"))]


def get_cipher(ctx: Ctx) -> CredentialCipher:
    """The credential cipher of the configured key file (read per request, so rotation
    needs no restart; the file is created on first use)."""
    return CredentialCipher.from_file(ctx.settings.secret_key_path)


Cipher = Annotated[CredentialCipher, Depends(get_cipher)]


@applications.get("", response_model=ApplicationPage, responses=problem_responses())
def list_applications(session: DbSession, caller: CatalogReader,
                      filters: Annotated[ApplicationFilter, Query()]) -> ApplicationPage:
    page = service.list_applications(session, filters=filters, limit=filters.limit,
                                     cursor=filters.cursor)
    return ApplicationPage(items=[ApplicationRead.of(a) for a in page.items],
                           next_cursor=page.next_cursor)


@applications.post("", status_code=201, response_model=ApplicationRead,
                   responses=problem_responses(409))
def create_application(session: DbSession, caller: CatalogWriter, clock: ClockDep,
                       cipher: Cipher, application_in: ApplicationCreate) -> ApplicationRead:
    application = service.create_application(session, application_in=application_in,
                                             cipher=cipher, actor=caller.actor, clock=clock)
    return ApplicationRead.of(application)


@applications.get("/{application_id}", response_model=ApplicationRead,
                  responses=problem_responses(404))
def get_application(session: DbSession, caller: CatalogReader,
                    application_id: uuid.UUID) -> ApplicationRead:
    return ApplicationRead.of(service.get_application(session, application_id=application_id))


@applications.patch("/{application_id}", response_model=ApplicationRead,
                    responses=problem_responses(404, 409))
def update_application(session: DbSession, caller: CatalogWriter, clock: ClockDep,
                       cipher: Cipher, application_id: uuid.UUID,
                       application_in: ApplicationUpdate) -> ApplicationRead:
    application = service.update_application(session, application_id=application_id,
                                             application_in=application_in, cipher=cipher,
                                             actor=caller.actor, clock=clock)
    return ApplicationRead.of(application)


@applications.delete("/{application_id}", status_code=204,
                     responses=problem_responses(404, 409))
def delete_application(session: DbSession, caller: CatalogWriter, clock: ClockDep,
                       application_id: uuid.UUID) -> Response:
    service.delete_application(session, application_id=application_id, actor=caller.actor,
                               clock=clock)
    return Response(status_code=204)


@accounts.get("", response_model=AccountPage, responses=problem_responses())
def list_accounts(session: DbSession, caller: AccountReader,
                  filters: Annotated[AccountFilter, Query()]) -> AccountPage:
    page = service.list_accounts(session, filters=filters, limit=filters.limit,
                                 cursor=filters.cursor)
    return AccountPage(items=[AccountRead.model_validate(a) for a in page.items],
                       next_cursor=page.next_cursor)


@accounts.post("", status_code=201, response_model=AccountRead,
               responses=problem_responses(409))
def create_account(session: DbSession, caller: AccountWriter, clock: ClockDep,
                   account_in: AccountCreate) -> AccountRead:
    account = service.create_account(session, account_in=account_in, actor=caller.actor,
                                     clock=clock)
    return AccountRead.model_validate(account)


@accounts.get("/{account_id}", response_model=AccountRead, responses=problem_responses(404))
def get_account(session: DbSession, caller: AccountReader, account_id: uuid.UUID) -> AccountRead:
    return AccountRead.model_validate(service.get_account(session, account_id=account_id))


@accounts.patch("/{account_id}", response_model=AccountRead,
                responses=problem_responses(404, 409))
def update_account(session: DbSession, caller: AccountWriter, clock: ClockDep,
                   account_id: uuid.UUID, account_in: AccountUpdate) -> AccountRead:
    account = service.update_account(session, account_id=account_id, account_in=account_in,
                                     actor=caller.actor, clock=clock)
    return AccountRead.model_validate(account)


@accounts.delete("/{account_id}", status_code=204, responses=problem_responses(404))
def delete_account(session: DbSession, caller: AccountWriter, clock: ClockDep,
                   account_id: uuid.UUID) -> Response:
    service.delete_account(session, account_id=account_id, actor=caller.actor, clock=clock)
    return Response(status_code=204)


router = APIRouter()
router.include_router(applications)
router.include_router(accounts)
