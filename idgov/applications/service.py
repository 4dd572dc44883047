"""Application (target system) and account services. They flush, audit, never commit.

Credentials enter as a dictionary, are encrypted with a :class:`CredentialCipher` before
they touch the session, and never appear in an audit event, a log line or a read model.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from sqlalchemy.orm import Session

from idgov.applications import repository
from idgov.applications.crypto import CredentialCipher
from idgov.applications.schemas import (
    AccountCreate,
    AccountFilter,
    AccountUpdate,
    ApplicationCreate,
    ApplicationFilter,
    ApplicationUpdate,
)
from idgov.audit.service import apply_changes, record, snapshot
from idgov.clock import Clock
from idgov.db.repository import Page, get_or_404, paginate, require_exists
from idgov.errors import Conflict, ErrorList, FieldError, InUse, InvalidInput
from idgov.models.application import Account, Application
from idgov.models.identity import Group, Identity
from idgov.provisioning import accounts
from idgov.types import Actor

# A settings key is refused when one of its words contains one of these...
_SECRET_FRAGMENTS = ("password", "passwd", "passphrase", "secret", "credential", "apikey",
                     "privatekey")
# ...or is one of these words, unless the key names where a secret lives, not the secret.
_SECRET_WORDS = frozenset({"key", "keys", "token", "tokens", "pwd", "pin"})
_NOT_A_SECRET_LAST_WORDS = frozenset({"url", "uri", "endpoint", "attribute", "attr"})


def _words(name: str) -> list[str]:
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name).lower()
    return [w for w in re.split(r"[^a-z0-9]+", spaced) if w]


def looks_secret(name: str) -> bool:
    """Whether a settings key names a secret (``bind_password``, ``clientSecret``, ``api_key``)."""
    words = _words(name)
    if not words or words[-1] in _NOT_A_SECRET_LAST_WORDS:
        return False
    return any(w in _SECRET_WORDS or any(f in w for f in _SECRET_FRAGMENTS) for w in words)


def _secret_settings(value: Any, path: str, found: ErrorList) -> None:
    if isinstance(value, dict):
        for key, inner in value.items():
            where = f"{path}.{key}"
            if looks_secret(str(key)):
                found.add(where, "looks like a secret: put it in credentials, which are "
                                 "encrypted at rest and never shown")
            else:
                _secret_settings(inner, where, found)
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            _secret_settings(inner, f"{path}.{index}", found)


def check_settings(settings: dict[str, Any]) -> None:
    """Refuse settings that carry secrets; those belong in the encrypted credentials."""
    found = ErrorList()
    _secret_settings(settings, "settings", found)
    found.raise_if_any("settings must not hold secrets: put them in credentials")


def _check_resolution_group(session: Session, group_id: uuid.UUID | None) -> None:
    if group_id is None:
        return
    require_exists(session, Group, group_id, "resolution_group_id")
    if repository.group_kind(session, group_id) != "resolution":
        raise InvalidInput("resolution_group_id must name a resolution group",
                           errors=[FieldError("resolution_group_id",
                                              f"group {group_id} is a team, not a resolution "
                                              "group")])


def _check_name(session: Session, name: str, exclude: uuid.UUID | None) -> None:
    if repository.application_name_taken(session, name, exclude=exclude):
        raise Conflict(f"an application named {name!r} already exists", field="name")


def _audited(application: Application, *, credentials_changed: bool = False) -> dict[str, Any]:
    data = snapshot(application)
    data["has_credentials"] = application.credentials_encrypted is not None
    if credentials_changed:
        data["credentials_changed"] = True
    return data


def get_application(session: Session, *, application_id: uuid.UUID) -> Application:
    """One application, or NotFound."""
    return get_or_404(session, Application, application_id, what="application")


def list_applications(session: Session, *, filters: ApplicationFilter, limit: int | None,
                      cursor: str | None) -> Page[Application]:
    """Applications matching ``filters``."""
    return paginate(session, repository.application_query(filters), Application, limit=limit,
                    cursor=cursor)


def _check_mapping(kind: str, settings: dict[str, Any]) -> None:
    """Refuse an account mapping that could not build accounts (422 with the fields)."""
    errors = accounts.mapping_errors(kind, settings)
    if errors:
        raise InvalidInput("the account mapping is invalid", errors=errors)


def create_application(session: Session, *, application_in: ApplicationCreate,
                       cipher: CredentialCipher, actor: Actor, clock: Clock) -> Application:
    """Register a target system; its credentials, if given, are stored encrypted."""
    _check_name(session, application_in.name, None)
    check_settings(application_in.settings)
    _check_mapping(application_in.connector_kind, application_in.settings)
    require_exists(session, Identity, application_in.owner_id, "owner_id")
    _check_resolution_group(session, application_in.resolution_group_id)
    data = application_in.model_dump(exclude={"credentials"})
    application = Application(**data)
    credentials = application_in.credentials
    if credentials is not None:
        application.credentials_encrypted = cipher.encrypt(credentials)
    application.created_at = application.updated_at = clock.now()
    session.add(application)
    session.flush()
    record(session, actor=actor, action="application.create", object_type="application",
           object_id=application.id, clock=clock,
           after=_audited(application, credentials_changed=credentials is not None))
    return application


def update_application(session: Session, *, application_id: uuid.UUID,
                       application_in: ApplicationUpdate, cipher: CredentialCipher,
                       actor: Actor, clock: Clock) -> Application:
    """Change the given fields; ``credentials`` replaces the stored ones, ``None`` clears them."""
    application = get_application(session, application_id=application_id)
    changes = application_in.model_dump(exclude_unset=True)
    for required in ("name", "connector_kind", "settings", "risk"):
        if required in changes and changes[required] is None:
            raise InvalidInput(f"{required} cannot be null",
                               errors=[FieldError(required, "cannot be null")])
    if changes.get("name"):
        _check_name(session, changes["name"], application_id)
    if "settings" in changes:
        check_settings(changes["settings"])
    if "settings" in changes or "connector_kind" in changes:
        _check_mapping(changes.get("connector_kind") or application.connector_kind,
                       changes.get("settings", application.settings))
    if "owner_id" in changes:
        require_exists(session, Identity, changes["owner_id"], "owner_id")
    if "resolution_group_id" in changes:
        _check_resolution_group(session, changes["resolution_group_id"])
    before = _audited(application)
    credentials_changed = False
    if "credentials" in changes:
        credentials = changes.pop("credentials")
        had = application.credentials_encrypted is not None
        application.credentials_encrypted = (
            None if credentials is None else cipher.encrypt(credentials))
        credentials_changed = credentials is not None or had
    for key, value in changes.items():
        setattr(application, key, value)
    application.updated_at = clock.now()
    session.flush()
    record(session, actor=actor, action="application.update", object_type="application",
           object_id=application.id, clock=clock, before=before,
           after=_audited(application, credentials_changed=credentials_changed))
    return application


def delete_application(session: Session, *, application_id: uuid.UUID, actor: Actor,
                       clock: Clock) -> None:
    """Delete an application that has no entitlements and no accounts; else InUse."""
    application = get_application(session, application_id=application_id)
    entitlements, accounts = repository.dependants(session, application_id)
    if entitlements or accounts:
        raise InUse(f"application {application.name!r} still has {entitlements} "
                    f"entitlement(s) and {accounts} account(s); remove them first",
                    entitlements=entitlements, accounts=accounts)
    before = _audited(application)
    session.delete(application)
    session.flush()
    record(session, actor=actor, action="application.delete", object_type="application",
           object_id=application_id, clock=clock, before=before)


def decrypt_credentials(session: Session, *, application_id: uuid.UUID,
                        cipher: CredentialCipher) -> dict[str, Any]:
    """The plaintext credentials of an application, for its connector ({} when none).

    Never log the result. Raises ``CredentialsUnreadable`` when no configured key opens them.
    """
    token = get_application(session, application_id=application_id).credentials_encrypted
    return {} if token is None else cipher.decrypt(token)


def reencrypt_credentials(session: Session, *, cipher: CredentialCipher, actor: Actor,
                          clock: Clock) -> int:
    """Re-encrypt every stored credential under the cipher's newest key; returns how many.

    The step between prepending a new key to the key file and removing the old one.
    """
    rows = repository.with_credentials(session)
    for application in rows:
        token = application.credentials_encrypted
        if token is not None:  # the query selected only rows that have some
            application.credentials_encrypted = cipher.rotate(token)
        record(session, actor=actor, action="application.credentials_reencrypt",
               object_type="application", object_id=application.id, clock=clock,
               context={"credentials_reencrypted": True})
    session.flush()
    return len(rows)


# Accounts ----------------------------------------------------------------------------------


def _check_account(session: Session, *, application_id: uuid.UUID, native_id: str,
                   account_type: str, identity_id: uuid.UUID | None,
                   owner_id: uuid.UUID | None, exclude: uuid.UUID | None) -> None:
    if account_type == "primary":
        if identity_id is None and owner_id is not None:
            raise InvalidInput(
                "a primary account belongs to a person: give identity_id, or make it a "
                "service, shared or administrative account to give it an owner",
                errors=[FieldError("identity_id", "required for a primary account with an "
                                                  "owner")])
    elif identity_id is None and owner_id is None:
        raise InvalidInput(f"a {account_type} account needs an owner_id or an identity_id",
                           errors=[FieldError("owner_id", f"required for a {account_type} "
                                                          "account without identity_id")])
    same = repository.account_by_native_id(session, application_id, native_id)
    if same is not None and same != exclude:
        raise Conflict(f"the application already has an account with native_id {native_id!r} "
                       f"(account {same})", field="native_id", account_id=str(same))
    if account_type == "primary" and identity_id is not None:
        primary = repository.primary_account_of(session, application_id, identity_id)
        if primary is not None and primary != exclude:
            raise Conflict(f"identity {identity_id} already has a primary account in this "
                           f"application (account {primary}); an identity has at most one",
                           field="identity_id", account_id=str(primary))


def get_account(session: Session, *, account_id: uuid.UUID) -> Account:
    """One account, or NotFound."""
    return get_or_404(session, Account, account_id, what="account")


def list_accounts(session: Session, *, filters: AccountFilter, limit: int | None,
                  cursor: str | None) -> Page[Account]:
    """Accounts matching ``filters``; ``orphan=True`` gives those with no identity and no owner."""
    return paginate(session, repository.account_query(filters), Account, limit=limit,
                    cursor=cursor)


def create_account(session: Session, *, account_in: AccountCreate, actor: Actor,
                   clock: Clock) -> Account:
    """Record an account of a target system.

    A primary account belongs to an identity (at most one per application), or to nobody
    when it is an orphan; other accounts need an owner or an identity.
    """
    require_exists(session, Application, account_in.application_id, "application_id")
    require_exists(session, Identity, account_in.identity_id, "identity_id")
    require_exists(session, Identity, account_in.owner_id, "owner_id")
    _check_account(session, application_id=account_in.application_id,
                   native_id=account_in.native_id, account_type=account_in.account_type,
                   identity_id=account_in.identity_id, owner_id=account_in.owner_id,
                   exclude=None)
    account = Account(**account_in.model_dump())
    account.created_at = account.updated_at = clock.now()
    session.add(account)
    session.flush()
    record(session, actor=actor, action="account.create", object_type="account",
           object_id=account.id, clock=clock, after=snapshot(account))
    return account


def update_account(session: Session, *, account_id: uuid.UUID, account_in: AccountUpdate,
                   actor: Actor, clock: Clock) -> Account:
    """Change the given fields of an account; the account rules hold for the result."""
    account = get_account(session, account_id=account_id)
    changes = account_in.model_dump(exclude_unset=True)
    for required in ("native_id", "account_type", "status", "attributes"):
        if required in changes and changes[required] is None:
            raise InvalidInput(f"{required} cannot be null",
                               errors=[FieldError(required, "cannot be null")])
    for ref in ("identity_id", "owner_id"):
        if ref in changes:
            require_exists(session, Identity, changes[ref], ref)
    merged = {key: changes.get(key, getattr(account, key))
              for key in ("native_id", "account_type", "identity_id", "owner_id")}
    _check_account(session, application_id=account.application_id, exclude=account.id,
                   **merged)
    apply_changes(session, account, changes, action="account.update",
                  object_type="account", actor=actor, clock=clock)
    return account


def delete_account(session: Session, *, account_id: uuid.UUID, actor: Actor,
                   clock: Clock) -> None:
    """Forget an account."""
    account = get_account(session, account_id=account_id)
    before = snapshot(account)
    session.delete(account)
    session.flush()
    record(session, actor=actor, action="account.delete", object_type="account",
           object_id=account_id, clock=clock, before=before)
