"""Reading a target and comparing it with what idgov knows: correlation of accounts to
identities, the target's accounts and memberships, the account rows kept in step with it.
Shared by aggregation and reconciliation (service.py)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy.orm import Session

from connectors.base import (
    CAN_LIST_ACCOUNTS,
    CAN_LIST_ENTITLEMENTS,
    AccountInfo,
    Connector,
    EntitlementInfo,
    Page,
)
from connectors.errors import DataError
from idgov.audit.service import record, snapshot
from idgov.clock import Clock
from idgov.errors import Conflict, FieldError, InvalidInput
from idgov.models.application import Account, Application
from idgov.models.catalog import Entitlement
from idgov.models.provisioning import DRIFT_KINDS, DriftItem, ReconciliationRun
from idgov.reconciliation import repository
from idgov.reconciliation.account_attributes import LAST_SIGN_IN_KEY, target_attributes
from idgov.reconciliation.repository import IdentityRow
from idgov.types import Actor

T = TypeVar("T")

PAGE_SIZE = 500

_LDAP_LIKE: tuple[tuple[str, str], ...] = (
    ("employeeNumber", "employee_id"), ("mail", "email"), ("uid", "attributes.uid"))
DEFAULT_CORRELATION: dict[str, tuple[tuple[str, str], ...]] = {
    "ldap": _LDAP_LIKE,
    "memory": _LDAP_LIKE,
    "manual": _LDAP_LIKE,
    "entra": (("employeeId", "employee_id"), ("mail", "email"),
              ("userPrincipalName", "email")),
    "keycloak": (("employeeNumber", "employee_id"), ("email", "email"),
                 ("username", "attributes.uid")),
}
CORRELATION_FIELDS = ("employee_id", "email")

# --- correlation rules -----------------------------------------------------------------------


@dataclass(frozen=True)
class CorrelationRule:
    attribute: str
    identity_field: str

    @property
    def label(self) -> str:
        return f"{self.attribute}->{self.identity_field}"


def correlation_rules(application: Application) -> list[CorrelationRule]:
    """The application's rules (``settings["correlation"]``), else its kind's defaults.

    Raises InvalidInput naming each malformed rule.
    """
    raw = (application.settings or {}).get("correlation")
    if raw is None:
        pairs = DEFAULT_CORRELATION.get(application.connector_kind, _LDAP_LIKE)
        return [CorrelationRule(a, f) for a, f in pairs]
    errors: list[FieldError] = []
    rules: list[CorrelationRule] = []
    if not isinstance(raw, list) or not raw:
        raise InvalidInput("settings.correlation must be a non-empty list of rules",
                           errors=[FieldError("settings.correlation", "a non-empty list")])
    for i, item in enumerate(raw):
        where = f"settings.correlation[{i}]"
        if not isinstance(item, dict):
            errors.append(FieldError(where, "a rule is {attribute, identity_field}"))
            continue
        attribute, target = item.get("attribute"), item.get("identity_field")
        if not isinstance(attribute, str) or not attribute.strip():
            errors.append(FieldError(f"{where}.attribute", "the target attribute to read"))
        ok_field = isinstance(target, str) and (
            target in CORRELATION_FIELDS
            or (target.startswith("attributes.") and len(target) > len("attributes.")))
        if not ok_field:
            errors.append(FieldError(f"{where}.identity_field",
                                     "one of employee_id, email, attributes.<key>"))
        if isinstance(attribute, str) and isinstance(target, str) and ok_field \
                and attribute.strip():
            rules.append(CorrelationRule(attribute.strip(), target))
    if errors:
        raise InvalidInput(f"the correlation rules of {application.name} are invalid",
                           errors=errors)
    return rules


def _norm(value: Any) -> str:
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return str(value).strip().casefold()


def norm_native(native_id: str) -> str:
    """A native id as compared: case and blanks around DN separators ignored (LDAP DNs are
    case-insensitive; object ids of other targets are unaffected)."""
    return re.sub(r"\s*([,=+])\s*", r"\1", native_id.strip()).casefold()


_AMBIGUOUS = uuid.UUID(int=0)


def _identity_value(person: IdentityRow, identity_field: str) -> Any:
    if identity_field.startswith("attributes."):
        value: Any = person.attributes or {}
        for part in identity_field.removeprefix("attributes.").split("."):
            value = value.get(part) if isinstance(value, dict) else None
        return value
    return getattr(person, identity_field)


def _identity_maps(people: Sequence[IdentityRow],
                   rules: Sequence[CorrelationRule]) -> dict[str, dict[str, uuid.UUID]]:
    """identity field -> normalised value -> identity id (``_AMBIGUOUS`` when shared)."""
    maps: dict[str, dict[str, uuid.UUID]] = {}
    for identity_field in {r.identity_field for r in rules}:
        found: dict[str, uuid.UUID] = {}
        for person in people:
            value = _identity_value(person, identity_field)
            values = value if isinstance(value, list | tuple) else [value]
            for v in values:
                if v is None or _norm(v) == "":
                    continue
                key = _norm(v)
                found[key] = person.id if found.get(key, person.id) == person.id else _AMBIGUOUS
        maps[identity_field] = found
    return maps


def _attribute_values(info: AccountInfo, name: str) -> list[Any]:
    attributes = info.attributes or {}
    value = attributes.get(name)
    if value is None:
        wanted = name.casefold()
        for key, candidate in attributes.items():
            if key.casefold() == wanted:
                value = candidate
                break
    if value is None and name == "username":
        value = info.username
    if value is None and name == "native_id":
        value = info.native_id
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple | set | frozenset) else [value]


def correlate(info: AccountInfo, rules: Sequence[CorrelationRule],
              maps: Mapping[str, Mapping[str, uuid.UUID]]
              ) -> tuple[uuid.UUID | None, CorrelationRule | None, str]:
    """(identity id, the rule that matched, why not) for one account."""
    ambiguous: list[str] = []
    for rule in rules:
        candidates = {maps[rule.identity_field].get(_norm(v))
                      for v in _attribute_values(info, rule.attribute) if _norm(v)}
        candidates.discard(None)
        if _AMBIGUOUS in candidates or len(candidates) > 1:
            ambiguous.append(rule.label)
            continue
        if candidates:
            identity_id = candidates.pop()
            assert identity_id is not None
            return identity_id, rule, ""
    if ambiguous:
        return None, None, "ambiguous: several identities match " + ", ".join(ambiguous)
    return None, None, "no correlation rule matched"


# --- reading the target ----------------------------------------------------------------------


@dataclass(frozen=True)
class TargetState:
    """Everything a connector listed."""

    accounts: list[AccountInfo]
    entitlements: list[EntitlementInfo]


def _walk(list_page: Callable[..., Page[T]], what: str) -> list[T]:
    found: list[T] = []
    cursor: str | None = None
    seen: set[str] = set()
    while True:
        page = list_page(cursor=cursor, page_size=PAGE_SIZE)
        found.extend(page.items)
        if page.next_cursor is None:
            return found
        if page.next_cursor in seen:
            raise DataError(f"the target repeated a cursor while listing {what}")
        seen.add(page.next_cursor)
        cursor = page.next_cursor


def read_target(connector: Connector) -> TargetState:
    """Every account and every entitlement with its members, all pages."""
    return TargetState(accounts=_walk(connector.list_accounts, "accounts"),
                       entitlements=_walk(connector.list_entitlements, "entitlements"))


def check_capabilities(application: Application, connector: Connector) -> None:
    missing = [c for c in (CAN_LIST_ACCOUNTS, CAN_LIST_ENTITLEMENTS)
               if c not in connector.capabilities]
    if missing:
        raise Conflict(f"the {application.connector_kind} connector of {application.name} "
                       f"cannot {' and '.join(m.replace('_', ' ') for m in missing)}: "
                       "nothing to aggregate or reconcile",
                       missing_capabilities=missing)


# --- accounts --------------------------------------------------------------------------------


@dataclass
class Synced:
    """The application's accounts after the sync, as the run needs them."""

    on_target: dict[str, Account]                     # normalised native id -> row
    orphans: dict[str, str] = field(default_factory=dict)  # normalised native id -> reason
    states: dict[uuid.UUID, str] = field(default_factory=dict)  # identity -> lifecycle
    counts: dict[str, Any] = field(default_factory=dict)


def sync_accounts(session: Session, *, application: Application,
                   target: Sequence[AccountInfo], rules: Sequence[CorrelationRule],
                   run: ReconciliationRun, actor: Actor, clock: Clock) -> Synced:
    """Create, update and correlate the application's account rows from the target; mark
    rows whose account is gone ``deleted``. Audited per account that changed (a newer last
    sign-in told by the target is a change: reconciliation.account_attributes)."""
    now = clock.now()
    existing = {norm_native(a.native_id): a for a in repository.accounts_of(session,
                                                                             application.id)}
    people = repository.identities(
        session, with_attributes=any(r.identity_field.startswith("attributes.")
                                     for r in rules))
    maps = _identity_maps(people, rules)
    # An identity has at most one primary account per application (whatever its status).
    taken = {a.identity_id: a for a in existing.values()
             if a.identity_id is not None and a.account_type == "primary"}
    synced = Synced(on_target={}, states={p.id: p.lifecycle_state for p in people})
    created: list[tuple[Account, CorrelationRule | None]] = []
    changed: list[tuple[Account, dict[str, Any], CorrelationRule | None]] = []
    by_rule: dict[str, int] = {}

    def link(row: Account, info: AccountInfo) -> tuple[CorrelationRule | None, str]:
        identity_id, rule, reason = correlate(info, rules, maps)
        if identity_id is None:
            return None, reason
        holder = taken.get(identity_id)
        if holder is not None and holder is not row:
            return None, (f"correlates by {rule.label if rule else '?'} to an identity that "
                          f"already has account {holder.native_id}")
        row.identity_id = identity_id
        taken[identity_id] = row
        assert rule is not None
        by_rule[rule.attribute] = by_rule.get(rule.attribute, 0) + 1
        return rule, ""

    for info in sorted(target, key=lambda a: a.native_id):
        key = norm_native(info.native_id)
        if key in synced.on_target:
            continue  # listed twice
        status = "active" if info.enabled else "disabled"
        attributes = target_attributes(info)
        username = (info.username or "")[:320] or None
        row = existing.get(key)
        reason = ""
        if row is None:
            row = Account(id=uuid.uuid4(), application_id=application.id,
                          native_id=info.native_id[:500], username=username,
                          account_type="primary", identity_id=None, status=status,
                          attributes=attributes, created_at=now, updated_at=now)
            rule, reason = link(row, info)
            session.add(row)
            created.append((row, rule))
        else:
            unlinked = (row.identity_id is None and row.owner_id is None
                        and row.account_type == "primary")
            differs = (row.status, row.username, row.attributes) != (status, username,
                                                                     attributes)
            if unlinked or differs:
                before = snapshot(row)
                rule = None
                if unlinked:
                    rule, reason = link(row, info)
                row.status, row.username, row.attributes = status, username, attributes
                if snapshot(row) != before:
                    row.updated_at = now
                    changed.append((row, before, rule))
        synced.on_target[key] = row
        if row.identity_id is None and row.owner_id is None:
            synced.orphans[key] = reason or "no correlation rule matched"
    for key, row in existing.items():
        if key not in synced.on_target and row.status != "deleted":
            before = snapshot(row)
            row.status = "deleted"
            row.updated_at = now
            changed.append((row, before, None))
    session.flush()
    context = {"run_id": str(run.id)}
    for row, rule in created:
        record(session, actor=actor, action="account.create", object_type="account",
               object_id=row.id, clock=clock, after=snapshot(row),
               context=context | ({"correlated_by": rule.label} if rule else {}))
    for row, before, rule in changed:
        record(session, actor=actor, action="account.update", object_type="account",
               object_id=row.id, clock=clock, before=before, after=snapshot(row),
               context=context | ({"correlated_by": rule.label} if rule else {}))
    synced.counts = {
        "accounts": len(synced.on_target),
        "accounts_created": len(created),
        "accounts_updated": sum(1 for r, _b, _r in changed if r.status != "deleted"),
        "accounts_gone": sum(1 for r, _b, _r in changed if r.status == "deleted"),
        "correlated": sum(1 for a in synced.on_target.values() if a.identity_id is not None),
        "correlated_now_by": dict(sorted(by_rule.items())),
        "last_sign_ins_changed": sum(
            1 for r, b, _r in changed
            if (b.get("attributes") or {}).get(LAST_SIGN_IN_KEY)
            != (r.attributes or {}).get(LAST_SIGN_IN_KEY)),
    }
    return synced


# --- memberships -----------------------------------------------------------------------------


@dataclass
class Memberships:
    """The target's memberships of entitlements the catalog knows, by account."""

    pairs: list[tuple[Account, Entitlement]]
    by_account: dict[str, list[str]]     # normalised account native id -> entitlement ids
    unknown_entitlements: list[EntitlementInfo]
    foreign_members: int


def read_memberships(target: Sequence[EntitlementInfo], known: Mapping[str, Entitlement],
                 synced: Synced) -> Memberships:
    result = Memberships(pairs=[], by_account={}, unknown_entitlements=[], foreign_members=0)
    seen: set[tuple[uuid.UUID, uuid.UUID]] = set()
    for info in sorted(target, key=lambda e: e.native_id):
        entitlement = known.get(norm_native(info.native_id))
        if entitlement is None:
            result.unknown_entitlements.append(info)
        for member in sorted(info.members):
            key = norm_native(member)
            account = synced.on_target.get(key)
            if account is None:
                result.foreign_members += 1  # a nested group, or an entry that is no account
                continue
            result.by_account.setdefault(key, []).append(info.native_id)
            if entitlement is not None and (account.id, entitlement.id) not in seen:
                seen.add((account.id, entitlement.id))
                result.pairs.append((account, entitlement))
    return result


def orphan_items(run: ReconciliationRun, synced: Synced,
                  memberships: Memberships) -> list[DriftItem]:
    items = []
    for key, reason in sorted(synced.orphans.items()):
        account = synced.on_target[key]
        items.append(DriftItem(
            id=uuid.uuid4(), run_id=run.id, kind="orphan_account",
            account_native_id=account.native_id, account_id=account.id,
            detail={"username": account.username, "status": account.status,
                    "reason": reason,
                    "entitlements": sorted(memberships.by_account.get(key, []))}))
    return items


def count_kinds(items: Iterable[DriftItem]) -> dict[str, int]:
    counts = dict.fromkeys(DRIFT_KINDS, 0)
    for item in items:
        counts[item.kind] += 1
    return counts
