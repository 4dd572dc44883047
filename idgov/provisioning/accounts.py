"""Accounts from identities: what account an identity gets in an application, and its name.

Each application maps identity fields to account attributes with templates, in
``application.settings["account_mapping"]`` over a default per connector kind::

    {"username": "{given_name:.1}{family_name}",          # then lower-cased, ASCII-folded
     "username_max_length": 64,
     "attributes": {"cn": "{display_name}", "mail": "{email}", "uid": "{username}", ...},
     "manage_accounts": true}

Templates are ``str.format`` templates, evaluated by a small safe formatter: a field is an
identity field (``given_name``, ``family_name``, ``display_name``, ``email``, ``department``,
``employee_id``, ...), ``username`` (the chosen login name, in attribute templates) or
``settings.<key>`` (a scalar of the application's settings), optionally sliced
(``{family_name[0:3]}``); a format spec may align and truncate (``{given_name:.1}``). Nothing
else: no attribute access, no indexing into other objects, no nested fields. An attribute
whose value comes out empty is left out of the account. Dotted attribute names
(``attributes.department``) become nested mappings (``{"attributes": {"department": ...}}``).

Login names are folded to lower-case ASCII (``Zoë O'Brien`` -> ``zobrien``). When the name is
taken in the application by an account or a pending account creation of someone else, 2, 3,
... is appended (``jsmith2``); the name chosen is kept on the create operation
(``detail.username``) and then on the account, so the same identity always keeps it, even
when its name changes later.

Manual applications (``manage_accounts`` false by default): no separate account creation;
the person fulfilling the first grant creates the account if needed (the task names it) and
the account is recorded when that task completes.
"""

from __future__ import annotations

import re
import string
import unicodedata
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from connectors.base import AccountRef, AccountSpec
from idgov.audit.service import record, snapshot
from idgov.clock import Clock
from idgov.errors import Conflict, FieldError, InvalidInput
from idgov.models.application import Account, Application
from idgov.models.identity import Identity
from idgov.models.provisioning import ProvisioningOperation
from idgov.provisioning.ordering import next_ordinal
from idgov.provisioning.repository import key_exists
from idgov.types import Actor

# Identity fields a template may name.
IDENTITY_FIELDS = ("employee_id", "given_name", "family_name", "display_name", "email",
                   "department", "location", "job_code", "job_title", "cost_center",
                   "employment_type")

_LDAP_LIKE: dict[str, Any] = {
    "username": "{given_name:.1}{family_name}",
    "attributes": {"uid": "{username}", "cn": "{display_name}", "sn": "{family_name}",
                   "givenName": "{given_name}", "mail": "{email}",
                   "departmentNumber": "{department}", "employeeNumber": "{employee_id}"},
}
DEFAULT_MAPPINGS: Mapping[str, Mapping[str, Any]] = {
    "ldap": _LDAP_LIKE,
    "memory": _LDAP_LIKE,
    "entra": {
        "username": "{given_name:.1}{family_name}",
        # The connector makes the userPrincipalName from the username and its upn_domain.
        "attributes": {"displayName": "{display_name}", "mailNickname": "{username}",
                       "department": "{department}", "employeeId": "{employee_id}"},
    },
    "keycloak": {
        "username": "{given_name:.1}{family_name}",
        # Names other than Keycloak's own user fields become user attributes.
        "attributes": {"email": "{email}", "firstName": "{given_name}",
                       "lastName": "{family_name}", "department": "{department}",
                       "employeeNumber": "{employee_id}"},
    },
    "manual": {**_LDAP_LIKE, "manage_accounts": False},
}
DEFAULT_MAX_LENGTH = 64
# Letters that Unicode decomposition does not reduce to ASCII.
_TRANSLIT = str.maketrans({"ß": "ss", "ø": "o", "Ø": "o", "æ": "ae", "Æ": "ae", "œ": "oe",
                           "Œ": "oe", "ł": "l", "Ł": "l", "đ": "d", "Đ": "d", "þ": "th",
                           "Þ": "th", "ð": "d", "Ð": "d", "\u0131": "i"})
_FIELD = re.compile(r"^(?P<name>[a-z_]+|settings\.[A-Za-z0-9_]+)"
                    r"(?:\[(?P<start>-?\d{1,3})?(?P<colon>:)?(?P<stop>-?\d{1,3})?\])?$")
_SPEC = re.compile(r"^(?:[^{}]?[<>^])?\d{0,3}(?:\.\d{1,3})?s?$")
# Operations that still hold a name for their identity (a failed creation gives it back).
_OPEN = ("pending", "running", "retry_scheduled")
_HOLDING = (*_OPEN, "succeeded")


class TemplateError(ValueError):
    """A naming template this formatter refuses."""


# --- the safe formatter ----------------------------------------------------------------------


def render(template: str, values: Mapping[str, str]) -> str:
    """Fill ``template`` from ``values`` (see the module docstring for what is allowed)."""
    try:
        parts = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise TemplateError(f"{template!r}: {exc}") from exc
    out: list[str] = []
    for literal, field_name, spec, conversion in parts:
        out.append(literal)
        if field_name is None:
            continue
        if conversion not in (None, "s"):
            raise TemplateError(f"{template!r}: conversion !{conversion} is not allowed")
        match = _FIELD.match(field_name)
        if match is None:
            raise TemplateError(f"{template!r}: {{{field_name}}} is not a field")
        name = match["name"]
        if name not in values:
            raise TemplateError(f"{template!r}: unknown field {name!r}")
        value = values[name]
        if match["colon"]:
            start = int(match["start"]) if match["start"] else None
            stop = int(match["stop"]) if match["stop"] else None
            value = value[start:stop]
        elif match["start"] is not None:
            index = int(match["start"])
            value = value[index] if -len(value) <= index < len(value) else ""
        if spec:
            if not _SPEC.match(spec):
                raise TemplateError(f"{template!r}: format spec {spec!r} is not allowed")
            value = format(value, spec)
        out.append(value)
    return "".join(out)


def fold(text: str) -> str:
    """Lower-case ASCII letters, digits, '.', '_' and '-' only (accents dropped, other
    characters removed): ``"Zoë O'Brien"`` -> ``"zoeobrien"``."""
    decomposed = unicodedata.normalize("NFKD", text.translate(_TRANSLIT))
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    ascii_only = plain.encode("ascii", "ignore").decode().lower()
    return re.sub(r"[^a-z0-9._-]", "", ascii_only).strip("._-")


# --- mappings --------------------------------------------------------------------------------


@dataclass(frozen=True)
class AccountMapping:
    """An application's effective account mapping."""

    username: str
    attributes: Mapping[str, str]
    max_length: int
    manage_accounts: bool


def mapping_of(application: Application) -> AccountMapping:
    """The default mapping of the application's kind with its settings over it (an
    attribute set to null in the settings removes a default one)."""
    base = DEFAULT_MAPPINGS.get(application.connector_kind, _LDAP_LIKE)
    try:
        custom = (application.settings or {}).get("account_mapping") or {}
        attributes = dict(base.get("attributes", {}))
        for key, value in (custom.get("attributes") or {}).items():
            if value is None:
                attributes.pop(key, None)
            else:
                attributes[key] = str(value)
        manage = custom.get("manage_accounts", base.get("manage_accounts", True))
        return AccountMapping(
            username=str(custom.get("username") or base["username"]), attributes=attributes,
            max_length=int(custom.get("username_max_length") or DEFAULT_MAX_LENGTH),
            manage_accounts=bool(manage))
    except (TypeError, ValueError, AttributeError) as exc:
        raise InvalidInput(f"the account mapping of {application.name} is not valid: {exc}",
                           errors=[FieldError("settings.account_mapping",
                                              f"not a valid mapping: {exc}")]) from exc


def identity_values(identity: Identity) -> dict[str, str]:
    """The identity fields a template may name, as strings ('' for none)."""
    values: dict[str, str] = {}
    for name in IDENTITY_FIELDS:
        value = getattr(identity, name)
        values[name] = "" if value is None else str(value)
    return values


def _settings_values(application: Application) -> dict[str, str]:
    return {f"settings.{k}": str(v) for k, v in (application.settings or {}).items()
            if isinstance(v, str | int | float | bool)}


def mapping_errors(kind: str, settings: Mapping[str, Any]) -> list[FieldError]:
    """The problems of the account mapping an application of ``kind`` with ``settings``
    would have (for the applications service to refuse bad settings up front)."""
    return validate_mapping(Application(name="?", connector_kind=kind, settings=dict(settings)))


def validate_mapping(application: Application) -> list[FieldError]:
    """The problems of an application's account mapping (empty: none)."""
    values = {n: "x" for n in IDENTITY_FIELDS} | {"username": "x"}
    values |= {f"settings.{k}": "x" for k in (application.settings or {})}
    try:
        mapping = mapping_of(application)
        templates = {"username": mapping.username} | {
            f"attributes.{k}": v for k, v in mapping.attributes.items()}
    except InvalidInput as exc:
        return list(exc.errors)
    errors: list[FieldError] = []
    for where, template in templates.items():
        try:
            render(template, values)
        except TemplateError as exc:
            errors.append(FieldError(f"settings.account_mapping.{where}", str(exc)))
    return errors


def _render_or_422(template: str, values: Mapping[str, str], application: Application) -> str:
    try:
        return render(template, values)
    except TemplateError as exc:
        raise InvalidInput(f"the account mapping of {application.name} is invalid: {exc}",
                           errors=[FieldError("settings.account_mapping", str(exc))]) from exc


def base_username(application: Application, values: Mapping[str, str]) -> str:
    """The login name the template gives before collision handling."""
    mapping = mapping_of(application)
    name = fold(_render_or_422(mapping.username, dict(values) | _settings_values(application),
                               application))
    if not name:
        name = "u" + fold(values.get("employee_id", "")) if values.get("employee_id") else "user"
    return name[:mapping.max_length]


def render_attributes(application: Application, values: Mapping[str, str],
                      username: str) -> dict[str, Any]:
    """The account attributes for ``values`` with login name ``username`` (empty ones left
    out; dotted names nested)."""
    mapping = mapping_of(application)
    scope = dict(values) | _settings_values(application) | {"username": username}
    result: dict[str, Any] = {}
    for key, template in mapping.attributes.items():
        value = _render_or_422(template, scope, application).strip()
        if not value:
            continue
        *path, leaf = key.split(".")
        target = result
        for part in path:
            nested = target.setdefault(part, {})
            if not isinstance(nested, dict):
                raise InvalidInput(f"the account mapping of {application.name} sets both "
                                   f"{part} and {key}",
                                   errors=[FieldError("settings.account_mapping", key)])
            target = nested
        target[leaf] = value
    return result


# --- names -----------------------------------------------------------------------------------


def primary_account(session: Session, *, identity_id: uuid.UUID,
                    application_id: uuid.UUID) -> Account | None:
    """The identity's primary account in the application, whatever its status."""
    return session.scalars(select(Account).where(
        Account.application_id == application_id, Account.identity_id == identity_id,
        Account.account_type == "primary")).one_or_none()


def _open_create(session: Session, *, identity_id: uuid.UUID, application_id: uuid.UUID,
                 states: tuple[str, ...] = _HOLDING) -> ProvisioningOperation | None:
    """The identity's latest create_account operation there in one of ``states`` (by
    default: one that holds its name)."""
    return session.scalars(
        select(ProvisioningOperation)
        .where(ProvisioningOperation.identity_id == identity_id,
               ProvisioningOperation.application_id == application_id,
               ProvisioningOperation.action == "create_account",
               ProvisioningOperation.state.in_(states))
        .order_by(ProvisioningOperation.created_at.desc(), ProvisioningOperation.id.desc())
        .limit(1)).one_or_none()


def _like_prefix(prefix: str) -> str:
    return prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _taken(session: Session, *, application_id: uuid.UUID, identity_id: uuid.UUID,
           base: str) -> set[str]:
    """Names starting with ``base`` held in the application by anyone but the identity:
    accounts (any status; orphans too) and account creations still under way or done."""
    pattern = _like_prefix(base)
    accounts = session.scalars(select(func.lower(Account.username)).where(
        Account.application_id == application_id,
        func.lower(Account.username).like(pattern, escape="\\"),
        (Account.identity_id.is_(None)) | (Account.identity_id != identity_id)))
    username = ProvisioningOperation.detail["username"].as_string()
    reserved = session.scalars(select(func.lower(username)).where(
        ProvisioningOperation.application_id == application_id,
        ProvisioningOperation.action == "create_account",
        ProvisioningOperation.state.in_(_HOLDING),
        ProvisioningOperation.identity_id != identity_id,
        func.lower(username).like(pattern, escape="\\")))
    return {n for n in accounts if n} | {n for n in reserved if n}


def taken_names(session: Session, *, application_id: uuid.UUID) -> set[str]:
    """Every login name held in the application (lower case): accounts of any status and
    account creations under way or done (for choosing many names at once)."""
    return _taken(session, application_id=application_id, identity_id=uuid.uuid4(), base="")


def choose_username(session: Session, *, identity: Identity, application: Application,
                    also_taken: Iterable[str] = ()) -> str:
    """The identity's login name in the application: its account's (whatever its status),
    else the one its creation reserved, else the template's, with 2, 3, ... appended while taken."""
    account = primary_account(session, identity_id=identity.id, application_id=application.id)
    if account is not None and account.username:
        return account.username  # even deleted: the name stays theirs
    pending = _open_create(session, identity_id=identity.id, application_id=application.id)
    if pending is not None and pending.detail.get("username"):
        return str(pending.detail["username"])
    base = base_username(application, identity_values(identity))
    max_length = mapping_of(application).max_length
    taken = _taken(session, application_id=application.id, identity_id=identity.id,
                   base=base) | {n.lower() for n in also_taken}
    n = 1
    while True:
        suffix = "" if n == 1 else str(n)
        candidate = base[:max_length - len(suffix)] + suffix
        if candidate not in taken:
            return candidate
        n += 1


def account_spec(session: Session, *, identity: Identity,
                 application: Application) -> AccountSpec:
    """The account the identity should have in the application, in its vocabulary."""
    username = choose_username(session, identity=identity, application=application)
    return AccountSpec(username=username,
                       attributes=render_attributes(application, identity_values(identity),
                                                    username))


# --- operations ------------------------------------------------------------------------------


def account_key(*, cause: str, cause_id: str, identity_id: uuid.UUID,
                application_id: uuid.UUID, action: str) -> str:
    """The idempotency key of an account operation (no entitlement)."""
    return f"{cause}:{cause_id}:{identity_id}:app:{application_id}:{action}"


def _add_operation(session: Session, *, key: str, identity_id: uuid.UUID,
                   application_id: uuid.UUID, action: str, cause: str, cause_id: str,
                   detail: dict[str, Any], account_id: uuid.UUID | None,
                   assignment_id: uuid.UUID | None, request_line_id: uuid.UUID | None,
                   actor: Actor, clock: Clock,
                   next_attempt_at: datetime | None = None) -> ProvisioningOperation:
    now = clock.now()
    op = ProvisioningOperation(
        idempotency_key=key, identity_id=identity_id, application_id=application_id,
        entitlement_id=None, account_id=account_id, action=action, state="pending",
        cause=cause, cause_id=cause_id, assignment_id=assignment_id,
        request_line_id=request_line_id, attempts=0, detail=detail,
        ordinal=next_ordinal(), next_attempt_at=next_attempt_at,
        created_at=now, updated_at=now)
    session.add(op)
    session.flush()
    record(session, actor=actor, action="provisioning.record",
           object_type="provisioning_operation", object_id=op.id, clock=clock,
           after=snapshot(op))
    return op


def record_account_action(session: Session, *, account: Account, action: str, cause: str,
                          cause_id: str, actor: Actor, clock: Clock,
                          detail: dict[str, Any] | None = None) -> ProvisioningOperation | None:
    """One ``enable_account``, ``disable_account`` or ``delete_account`` operation for an
    identity's ``account``, audited, with the next ordinal (None when this cause already
    recorded it: the key is the cause's, per account)."""
    assert account.identity_id is not None, "account actions are for an identity's accounts"
    key = account_key(cause=cause, cause_id=cause_id, identity_id=account.identity_id,
                      application_id=account.application_id, action=action) + f":{account.id}"
    if key_exists(session, key):
        return None
    return _add_operation(session, key=key, identity_id=account.identity_id,
                          application_id=account.application_id, action=action, cause=cause,
                          cause_id=cause_id, detail=dict(detail or {}), account_id=account.id,
                          assignment_id=None, request_line_id=None, actor=actor, clock=clock)


def needs_account(session: Session, *, identity_id: uuid.UUID,
                  application: Application) -> bool:
    """Whether a create_account operation is due: the application manages accounts, the
    identity has no live primary account there and no creation under way."""
    if not mapping_of(application).manage_accounts:
        return False
    account = primary_account(session, identity_id=identity_id, application_id=application.id)
    if account is not None and account.status != "deleted":
        return False
    return _open_create(session, identity_id=identity_id, application_id=application.id,
                        states=_OPEN) is None


def ensure_account_operations(session: Session, *, identity_id: uuid.UUID,
                              application_id: uuid.UUID, cause: str, cause_id: str,
                              actor: Actor, clock: Clock,
                              assignment_id: uuid.UUID | None = None,
                              request_line_id: uuid.UUID | None = None,
                              ) -> ProvisioningOperation | None:
    """Record a create_account operation when the identity has no primary account in the
    application and none is being created (None otherwise, and for the same cause twice).

    The login name is chosen now and kept in ``detail.username``; the operation takes the
    next ordinal, so grants recorded after it run after it.
    """
    application = session.get(Application, application_id)
    identity = session.get(Identity, identity_id)
    if application is None or identity is None:
        return None
    if not needs_account(session, identity_id=identity_id, application=application):
        return None
    key = account_key(cause=cause, cause_id=cause_id, identity_id=identity_id,
                      application_id=application_id, action="create_account")
    if key_exists(session, key):
        return None
    username = choose_username(session, identity=identity, application=application)
    return _add_operation(session, key=key, identity_id=identity_id,
                          application_id=application_id, action="create_account",
                          cause=cause, cause_id=cause_id, detail={"username": username},
                          account_id=None, assignment_id=assignment_id,
                          request_line_id=request_line_id, actor=actor, clock=clock)


def account_ref(session: Session, *, operation: ProvisioningOperation) -> AccountRef | None:
    """The primary account of the operation's identity on its application (None when it
    has none, or it was deleted)."""
    account = None
    if operation.account_id is not None:
        account = session.get(Account, operation.account_id)
    if account is None:
        account = primary_account(session, identity_id=operation.identity_id,
                                  application_id=operation.application_id)
    if account is None or account.status == "deleted":
        return None
    return AccountRef(native_id=account.native_id, username=account.username or "")


def add_primary_account(session: Session, *, operation: ProvisioningOperation,
                        application: Application, identity: Identity, ref: AccountRef,
                        actor: Actor, clock: Clock) -> Account:
    """A new primary account row for what ``operation`` created, audited ``account.create``
    and linked to the operation (no flush: the provisioning engine records a batch at once)."""
    now = clock.now()
    account = Account(id=uuid.uuid4(), application_id=operation.application_id,
                      native_id=ref.native_id, username=ref.username, account_type="primary",
                      identity_id=identity.id, status="active",
                      attributes=render_attributes(application, identity_values(identity),
                                                   ref.username),
                      created_at=now, updated_at=now)
    session.add(account)
    record(session, actor=actor, action="account.create", object_type="account",
           object_id=account.id, clock=clock, after=snapshot(account),
           context={"operation_id": str(operation.id)})
    operation.account_id = account.id
    operation.updated_at = now
    return account


def record_account_created(session: Session, *, operation: ProvisioningOperation,
                           ref: AccountRef, actor: Actor, clock: Clock) -> Account:
    """Record the account the target created (or already had) for the operation's identity.

    Reuses the identity's primary account row there (a deleted one comes back active), or
    claims an uncorrelated account with the same native id; Conflict when that native id
    belongs to another identity. Sets ``operation.account_id``. Audited ``account.create``
    (new row) or ``account.update``.
    """
    application = session.get(Application, operation.application_id)
    identity = session.get(Identity, operation.identity_id)
    assert application is not None and identity is not None
    attributes = render_attributes(application, identity_values(identity), ref.username)
    now = clock.now()
    same_native = session.scalars(select(Account).where(
        Account.application_id == operation.application_id,
        Account.native_id == ref.native_id)).one_or_none()
    if same_native is not None and same_native.identity_id not in (None, identity.id):
        raise Conflict(f"account {ref.native_id} in {application.name} belongs to another "
                       "identity", account_id=str(same_native.id))
    account = primary_account(session, identity_id=identity.id,
                              application_id=operation.application_id)
    if account is not None and same_native is not None and same_native.id != account.id:
        raise Conflict(f"{identity.display_name} already has account {account.native_id} in "
                       f"{application.name}, not {ref.native_id}",
                       account_id=str(account.id))
    account = account or same_native
    if account is None:
        account = add_primary_account(session, operation=operation, application=application,
                                      identity=identity, ref=ref, actor=actor, clock=clock)
        session.flush()
    else:
        before = snapshot(account)
        account.native_id = ref.native_id
        account.username = ref.username
        account.identity_id = identity.id
        account.account_type = "primary"
        account.status = "active"
        account.attributes = attributes
        account.updated_at = now
        session.flush()
        record(session, actor=actor, action="account.update", object_type="account",
               object_id=account.id, clock=clock, before=before, after=snapshot(account),
               context={"operation_id": str(operation.id)})
    if operation.account_id != account.id:
        operation.account_id = account.id
        operation.updated_at = now
        session.flush()
    return account


# --- pushing identity changes ----------------------------------------------------------------


def push_identity_change(session: Session, *, identity: Identity, before: Mapping[str, str],
                         actor: Actor, clock: Clock) -> list[ProvisioningOperation]:
    """After an identity changed (``before``: :func:`identity_values` before the change):
    one ``update_account`` operation per live account whose mapped attributes changed.

    ``detail.attributes`` holds the account's new attributes, with None for those that
    became empty (to be cleared); ``detail.changed`` names the changed ones. The login name
    never changes.
    """
    after = identity_values(identity)
    if after == dict(before):
        return []
    accounts = session.scalars(select(Account).where(
        Account.identity_id == identity.id, Account.status != "deleted")
        .order_by(Account.id))
    change_id = str(uuid.uuid4())
    made: list[ProvisioningOperation] = []
    for account in accounts:
        application = session.get(Application, account.application_id)
        assert application is not None
        username = account.username or ""
        old = _flat(render_attributes(application, before, username))
        new = _flat(render_attributes(application, after, username))
        changed = sorted(k for k in old.keys() | new.keys() if old.get(k) != new.get(k))
        if not changed:
            continue
        payload = _nest({**{k: None for k in old.keys() - new.keys()}, **new})
        made.append(_add_operation(
            session, key=account_key(cause="identity_change", cause_id=change_id,
                                     identity_id=identity.id,
                                     application_id=account.application_id,
                                     action="update_account") + f":{account.id}",
            identity_id=identity.id, application_id=account.application_id,
            action="update_account", cause="identity_change", cause_id=change_id,
            detail={"attributes": payload, "changed": changed}, account_id=account.id,
            assignment_id=None, request_line_id=None, actor=actor, clock=clock))
    return made


def _flat(attributes: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in attributes.items():
        if isinstance(value, Mapping):
            flat |= _flat(value, f"{prefix}{key}.")
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _nest(flat: Mapping[str, Any]) -> dict[str, Any]:
    nested: dict[str, Any] = {}
    for key, value in sorted(flat.items()):
        *path, leaf = key.split(".")
        target = nested
        for part in path:
            target = target.setdefault(part, {})
        target[leaf] = value
    return nested
