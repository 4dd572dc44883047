"""SoD rules and their exceptions. Services flush, audit, never commit.

A rule names two sides of roles and entitlements. Deleting a rule is for mistakes: once an
exception was granted under it, the rule is evidence and is retired with ``enabled=false``.
Exceptions are never deleted; they expire or are revoked with a reason.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy.orm import Session

from idgov.audit.service import record, snapshot
from idgov.catalog import repository
from idgov.catalog.schemas import (
    SodExceptionCreate,
    SodExceptionFilter,
    SodItemIn,
    SodRuleCreate,
    SodRuleFilter,
    SodRuleUpdate,
)
from idgov.clock import Clock
from idgov.db.repository import Page, get_or_404, paginate, require_exists
from idgov.errors import Conflict, ErrorList, FieldError, InUse, InvalidInput, NotFound
from idgov.models.catalog import Entitlement, Role, SodException, SodRule, SodRuleItem
from idgov.models.identity import Identity
from idgov.types import Actor


@dataclass(frozen=True)
class SodItemView:
    type: Literal["role", "entitlement"]
    id: uuid.UUID
    name: str


@dataclass(frozen=True)
class SodRuleView:
    """A rule with its two sides, shaped like ``SodRuleRead``."""

    id: uuid.UUID
    name: str
    description: str | None
    severity: str
    exception_allowed: bool
    enabled: bool
    side_a: list[SodItemView]
    side_b: list[SodItemView]
    created_at: datetime
    updated_at: datetime

    def audit_view(self) -> dict[str, Any]:
        return {
            "id": self.id, "name": self.name, "description": self.description,
            "severity": self.severity, "exception_allowed": self.exception_allowed,
            "enabled": self.enabled,
            "side_a": [{"type": i.type, "id": i.id} for i in self.side_a],
            "side_b": [{"type": i.type, "id": i.id} for i in self.side_b],
        }


def _view(rule: SodRule, items: list[tuple[SodRuleItem, str]]) -> SodRuleView:
    def side(which: str) -> list[SodItemView]:
        return [
            SodItemView("role", item.role_id, name) if item.role_id is not None
            else SodItemView("entitlement", item.entitlement_id, name)  # type: ignore[arg-type]
            for item, name in items if item.side == which
        ]

    return SodRuleView(id=rule.id, name=rule.name, description=rule.description,
                       severity=rule.severity, exception_allowed=rule.exception_allowed,
                       enabled=rule.enabled, side_a=side("a"), side_b=side("b"),
                       created_at=rule.created_at, updated_at=rule.updated_at)


def _load_view(session: Session, rule: SodRule) -> SodRuleView:
    session.flush()
    return _view(rule, repository.sod_items(session, [rule.id])[rule.id])


def _key(item: SodItemIn) -> tuple[str, uuid.UUID]:
    if item.role_id is not None:
        return "role", item.role_id
    assert item.entitlement_id is not None
    return "entitlement", item.entitlement_id


def _check_sides(session: Session, side_a: list[SodItemIn], side_b: list[SodItemIn]) -> None:
    errors = ErrorList()
    roles = repository.existing_ids(session, Role, [i.role_id for i in side_a + side_b
                                                    if i.role_id is not None])
    ents = repository.existing_ids(session, Entitlement,
                                   [i.entitlement_id for i in side_a + side_b
                                    if i.entitlement_id is not None])
    keys: dict[str, set[tuple[str, uuid.UUID]]] = {"side_a": set(), "side_b": set()}
    for side_name, items in (("side_a", side_a), ("side_b", side_b)):
        for n, item in enumerate(items):
            kind, ident = _key(item)
            field = f"{side_name}.{n}.{kind}_id"
            if ident not in (roles if kind == "role" else ents):
                errors.add(field, f"no {kind} {ident}")
            elif (kind, ident) in keys[side_name]:
                errors.add(field, f"{kind} {ident} is listed twice on this side")
            keys[side_name].add((kind, ident))
    for kind, ident in sorted(keys["side_a"] & keys["side_b"], key=str):
        errors.add("side_b", f"{kind} {ident} is on both sides")
    errors.raise_if_any("the rule's sides are invalid")


def _write_side(session: Session, rule_id: uuid.UUID, side: str,
                items: list[SodItemIn]) -> None:
    for item in items:
        session.add(SodRuleItem(rule_id=rule_id, side=side, role_id=item.role_id,
                                entitlement_id=item.entitlement_id))


def _check_name(session: Session, name: str, exclude: uuid.UUID | None) -> None:
    if repository.name_taken(session, SodRule, name, exclude):
        raise Conflict(f"an SoD rule named {name!r} already exists", field="name")


def list_rules(session: Session, *, filters: SodRuleFilter) -> Page[SodRuleView]:
    """SoD rules matching ``filters`` with their sides, one keyset page."""
    page = paginate(session, repository.sod_rule_list_query(filters), SodRule,
                    limit=filters.limit, cursor=filters.cursor)
    items = repository.sod_items(session, [r.id for r in page.items])
    return Page(items=[_view(r, items[r.id]) for r in page.items],
                next_cursor=page.next_cursor)


def get_rule(session: Session, *, rule_id: uuid.UUID) -> SodRuleView:
    """One SoD rule with its sides, or NotFound."""
    return _load_view(session, get_or_404(session, SodRule, rule_id, what="SoD rule"))


def create_rule(session: Session, *, rule_in: SodRuleCreate, actor: Actor,
                clock: Clock) -> SodRuleView:
    """Add an SoD rule; every item must exist and no item may sit on both sides."""
    _check_name(session, rule_in.name, None)
    _check_sides(session, rule_in.side_a, rule_in.side_b)
    rule = SodRule(**rule_in.model_dump(exclude={"side_a", "side_b"}))
    rule.created_at = rule.updated_at = clock.now()
    session.add(rule)
    session.flush()
    _write_side(session, rule.id, "a", rule_in.side_a)
    _write_side(session, rule.id, "b", rule_in.side_b)
    view = _load_view(session, rule)
    record(session, actor=actor, action="sod_rule.create", object_type="sod_rule",
           object_id=rule.id, clock=clock, after=view.audit_view())
    return view


def update_rule(session: Session, *, rule_id: uuid.UUID, rule_in: SodRuleUpdate, actor: Actor,
                clock: Clock) -> SodRuleView:
    """Change the given fields; a side given replaces that side (the audit keeps the old)."""
    rule = get_or_404(session, SodRule, rule_id, what="SoD rule")
    before = _load_view(session, rule)
    changes = rule_in.model_dump(exclude_unset=True, exclude={"side_a", "side_b"})
    nulls: list[str] = [f for f in ("name", "severity", "exception_allowed", "enabled")
                        if f in changes and changes[f] is None]
    for side in ("side_a", "side_b"):
        if side in rule_in.model_fields_set and getattr(rule_in, side) is None:
            nulls.append(side)
    if nulls:
        raise InvalidInput("these fields cannot be null",
                           errors=[FieldError(f, "cannot be null") for f in nulls])
    if changes.get("name") is not None:
        _check_name(session, changes["name"], rule.id)
    current = {s: [SodItemIn(role_id=i.id if i.type == "role" else None,
                             entitlement_id=i.id if i.type == "entitlement" else None)
                   for i in getattr(before, s)] for s in ("side_a", "side_b")}
    side_a = rule_in.side_a if rule_in.side_a is not None else current["side_a"]
    side_b = rule_in.side_b if rule_in.side_b is not None else current["side_b"]
    _check_sides(session, side_a, side_b)
    for key, value in changes.items():
        setattr(rule, key, value)
    for letter, items in (("a", rule_in.side_a), ("b", rule_in.side_b)):
        if items is not None:
            repository.delete_sod_items(session, rule.id, letter)
            _write_side(session, rule.id, letter, items)
    rule.updated_at = clock.now()
    after = _load_view(session, rule)
    record(session, actor=actor, action="sod_rule.update", object_type="sod_rule",
           object_id=rule.id, clock=clock, before=before.audit_view(),
           after=after.audit_view())
    return after


def delete_rule(session: Session, *, rule_id: uuid.UUID, actor: Actor, clock: Clock) -> None:
    """Delete a rule no exception was ever granted under; otherwise InUse (disable it)."""
    rule = get_or_404(session, SodRule, rule_id, what="SoD rule")
    granted = repository.exception_count(session, rule.id)
    if granted:
        raise InUse(f"SoD rule {rule.name!r} has {granted} exception(s) on record: disable it "
                    "with enabled=false instead", exceptions=granted)
    before = _load_view(session, rule).audit_view()
    repository.delete_sod_items(session, rule.id)
    session.delete(rule)
    session.flush()
    record(session, actor=actor, action="sod_rule.delete", object_type="sod_rule",
           object_id=rule_id, clock=clock, before=before)


def list_exceptions(session: Session, *, rule_id: uuid.UUID, filters: SodExceptionFilter,
                    clock: Clock) -> Page[SodException]:
    """The exceptions granted under a rule, one keyset page."""
    get_or_404(session, SodRule, rule_id, what="SoD rule")
    return paginate(session, repository.exception_list_query(rule_id, filters, clock.now()),
                    SodException, limit=filters.limit, cursor=filters.cursor)


def grant_exception(session: Session, *, rule_id: uuid.UUID, exception_in: SodExceptionCreate,
                    actor: Actor, clock: Clock) -> SodException:
    """Let one identity break a rule until ``expires_at``, under a mitigating control.

    Refused (Conflict) when the rule allows no exceptions or the identity already has an
    active one; the approver must exist and must not be the identity itself.
    """
    rule = get_or_404(session, SodRule, rule_id, what="SoD rule")
    if not rule.exception_allowed:
        raise Conflict(f"SoD rule {rule.name!r} does not allow exceptions")
    require_exists(session, Identity, exception_in.identity_id, "identity_id")
    require_exists(session, Identity, exception_in.approver_id, "approver_id")
    errors = ErrorList()
    if exception_in.approver_id == exception_in.identity_id:
        errors.add("approver_id", "nobody approves an exception for themselves")
    now = clock.now()
    if exception_in.expires_at <= now:
        errors.add("expires_at", "must be in the future")
    errors.raise_if_any("the exception is invalid")
    existing = repository.active_exception(session, rule.id, exception_in.identity_id, now)
    if existing is not None:
        raise Conflict(f"identity {exception_in.identity_id} already has active exception "
                       f"{existing.id} to SoD rule {rule.name!r}", exception_id=str(existing.id))
    exception = SodException(rule_id=rule.id, **exception_in.model_dump())
    exception.created_at = exception.updated_at = now
    session.add(exception)
    session.flush()
    record(session, actor=actor, action="sod_exception.grant", object_type="sod_exception",
           object_id=exception.id, clock=clock, after=snapshot(exception))
    return exception


def revoke_exception(session: Session, *, rule_id: uuid.UUID, exception_id: uuid.UUID,
                     reason: str, actor: Actor, clock: Clock) -> SodException:
    """End an active exception now, with ``reason``; the row stays as evidence."""
    exception = get_or_404(session, SodException, exception_id, what="SoD exception")
    if exception.rule_id != rule_id:
        raise NotFound(f"SoD exception {exception_id} does not exist")
    now = clock.now()
    if exception.revoked_at is not None:
        raise Conflict(f"SoD exception {exception_id} was already revoked")
    if exception.expires_at <= now:
        raise Conflict(f"SoD exception {exception_id} has already expired")
    before = snapshot(exception)
    exception.revoked_at = now
    exception.revoke_reason = reason
    exception.updated_at = now
    session.flush()
    record(session, actor=actor, action="sod_exception.revoke", object_type="sod_exception",
           object_id=exception.id, clock=clock, before=before, after=snapshot(exception),
           context={"reason": reason})
    return exception
