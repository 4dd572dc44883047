"""Administering birthright rules: create, change, retire, delete, preview.

A change that can move access (a new rule, a new condition or target, enabling or
disabling) is applied in the same transaction to the identities it affects: those the
rule matches now and those holding access it gave. Deleting is for mistakes: once the rule
gave an assignment it is history, and it is retired with ``enabled=false`` instead.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy.orm import Session

from idgov.audit.service import record, snapshot
from idgov.birthright import repository
from idgov.birthright.schemas import (
    BirthrightRuleCreate,
    BirthrightRuleFilter,
    BirthrightRuleUpdate,
    RuleApplication,
    RulePreviewIn,
)
from idgov.birthright.service import grace_for, load_rules, recompute
from idgov.clock import Clock
from idgov.db.repository import Page, get_or_404, paginate
from idgov.errors import Conflict, ErrorList, FieldError, InUse, InvalidInput
from idgov.models.catalog import Entitlement, Role
from idgov.models.hr import BirthrightRule
from idgov.models.identity import Identity
from idgov.policy.birthright import matches, validate
from idgov.types import Actor

PREVIEW_LIMIT = 50
_APPLIED_FIELDS = ("condition", "role_id", "entitlement_id", "enabled")


@dataclass
class RuleOutcome:
    """A rule after a write, with what applying it did (None when nothing could change)."""

    rule: BirthrightRule
    applied: RuleApplication | None


@dataclass(frozen=True)
class Preview:
    matching_count: int
    matching: list[Identity]
    gaining_count: int | None = None
    gaining: list[Identity] | None = None
    losing_count: int | None = None
    losing: list[Identity] | None = None


def _check(session: Session, *, condition: Any, role_id: uuid.UUID | None,
           entitlement_id: uuid.UUID | None, need_target: bool = True) -> None:
    """Report every problem of a condition and target at once (InvalidInput)."""
    errors = ErrorList()
    for path, message in validate(condition, "condition"):
        errors.add(path, message)
    if (role_id is None) == (entitlement_id is None) and (need_target or role_id is not None):
        errors.add("role_id", "give exactly one of role_id and entitlement_id")
    if role_id is not None and session.get(Role, role_id) is None:
        errors.add("role_id", f"no role {role_id}")
    if entitlement_id is not None and session.get(Entitlement, entitlement_id) is None:
        errors.add("entitlement_id", f"no entitlement {entitlement_id}")
    errors.raise_if_any("the birthright rule is invalid")


def _check_name(session: Session, name: str, exclude: uuid.UUID | None) -> None:
    if repository.name_taken(session, name, exclude):
        raise Conflict(f"a birthright rule named {name!r} already exists", field="name")


def apply_rule(session: Session, *, rule: BirthrightRule, actor: Actor, clock: Clock,
               reason: str) -> RuleApplication:
    """Recompute every identity whose birthright access this rule (as it now stands) would
    change: matched but not holding its target, or holding access it gave but no longer
    matched (or the rule is disabled). Per identity through :func:`recompute`.

    Future work: 100k identities matching a new rule cost one recompute each; a set-based
    grant path (as the HR feed's bulk joiners) would be the fast way.
    """
    session.flush()
    now = clock.now()
    holders = repository.rule_holders(session, rule.id, now)
    target = (rule.role_id, rule.entitlement_id)
    affected: list[Identity] = []
    for identity, subject in repository.population(session):
        held = holders.get(identity.id, [])
        if rule.enabled and matches(rule.condition, subject):
            settled = held and all((r, e) == target and until is None for r, e, until in held)
            if not settled:
                affected.append(identity)
        elif held:
            affected.append(identity)
    rules = load_rules(session)
    graces: dict[uuid.UUID | None, timedelta] = {}
    totals = dict.fromkeys(("granted", "ending", "restored", "revoked", "skipped"), 0)
    for identity in affected:
        if identity.hr_source_id not in graces:
            graces[identity.hr_source_id] = grace_for(session, identity)
        result = recompute(session, identity_id=identity.id,
                           grace=graces[identity.hr_source_id], actor=actor, clock=clock,
                           reason=reason, rules=rules)
        for name in totals:
            totals[name] += len(getattr(result, name))
    return RuleApplication(identities=len(affected), **totals)


def list_rules(session: Session, *, filters: BirthrightRuleFilter) -> Page[BirthrightRule]:
    """Birthright rules matching ``filters``, one keyset page."""
    return paginate(session, repository.rule_list_query(filters), BirthrightRule,
                    limit=filters.limit, cursor=filters.cursor)


def get_rule(session: Session, *, rule_id: uuid.UUID) -> BirthrightRule:
    """One rule, or NotFound."""
    return get_or_404(session, BirthrightRule, rule_id, what="birthright rule")


def create_rule(session: Session, *, rule_in: BirthrightRuleCreate, actor: Actor,
                clock: Clock) -> RuleOutcome:
    """Add a rule and, when enabled, grant its target to everyone it matches now.

    InvalidInput for a bad condition (``condition.<path>``), a missing or double target or
    a dangling reference; Conflict for a taken name.
    """
    _check_name(session, rule_in.name, None)
    _check(session, condition=rule_in.condition, role_id=rule_in.role_id,
           entitlement_id=rule_in.entitlement_id)
    now = clock.now()
    rule = BirthrightRule(**rule_in.model_dump(), created_at=now, updated_at=now)
    session.add(rule)
    session.flush()
    record(session, actor=actor, action="birthright_rule.create", object_type="birthright_rule",
           object_id=rule.id, clock=clock, after=snapshot(rule))
    applied = (apply_rule(session, rule=rule, actor=actor, clock=clock,
                          reason=f"birthright rule {rule.name}") if rule.enabled else None)
    return RuleOutcome(rule=rule, applied=applied)


def update_rule(session: Session, *, rule_id: uuid.UUID, rule_in: BirthrightRuleUpdate,
                actor: Actor, clock: Clock) -> RuleOutcome:
    """Change the given fields and apply the rule again when its condition, target or
    ``enabled`` changed (access it no longer gives ends after the grace period)."""
    rule = get_rule(session, rule_id=rule_id)
    changes: dict[str, Any] = rule_in.model_dump(exclude_unset=True)
    nulls = [f for f in ("name", "condition", "enabled") if f in changes and changes[f] is None]
    if nulls:
        raise InvalidInput("these fields cannot be null",
                           errors=[FieldError(f, "cannot be null") for f in nulls])
    if "role_id" in changes or "entitlement_id" in changes:
        # Naming one target switches to it; the other is cleared unless given as well.
        changes.setdefault("role_id", None)
        changes.setdefault("entitlement_id", None)
    if changes.get("name") is not None:
        _check_name(session, changes["name"], rule.id)
    _check(session, condition=changes.get("condition", rule.condition),
           role_id=changes.get("role_id", rule.role_id),
           entitlement_id=changes.get("entitlement_id", rule.entitlement_id))
    before = snapshot(rule)
    for key, value in changes.items():
        setattr(rule, key, value)
    rule.updated_at = clock.now()
    session.flush()
    after = snapshot(rule)
    record(session, actor=actor, action="birthright_rule.update", object_type="birthright_rule",
           object_id=rule.id, clock=clock, before=before, after=after)
    moved = any(before.get(f) != after.get(f) for f in _APPLIED_FIELDS)
    applied = (apply_rule(session, rule=rule, actor=actor, clock=clock,
                          reason=f"birthright rule {rule.name}") if moved else None)
    return RuleOutcome(rule=rule, applied=applied)


def delete_rule(session: Session, *, rule_id: uuid.UUID, actor: Actor, clock: Clock) -> None:
    """Delete a rule that never gave an assignment; otherwise InUse (disable it instead)."""
    rule = get_rule(session, rule_id=rule_id)
    given = repository.assignment_count(session, rule.id)
    if given:
        raise InUse(f"birthright rule {rule.name!r} gave {given} assignment(s), kept as "
                    "history: disable it with enabled=false instead", assignments=given)
    before = snapshot(rule)
    session.delete(rule)
    session.flush()
    record(session, actor=actor, action="birthright_rule.delete", object_type="birthright_rule",
           object_id=rule_id, clock=clock, before=before)


def preview(session: Session, *, preview_in: RulePreviewIn, clock: Clock) -> Preview:
    """Who ``condition`` matches now (identities not terminated, by employee id); with
    ``rule_id``, who would gain the (given, else the rule's) target and who would lose the
    access the rule gives now. Changes nothing."""
    _check(session, condition=preview_in.condition, role_id=preview_in.role_id,
           entitlement_id=preview_in.entitlement_id, need_target=False)
    rule = (get_rule(session, rule_id=preview_in.rule_id) if preview_in.rule_id is not None
            else None)
    matching: list[Identity] = []
    gaining: list[Identity] = []
    losing: list[Identity] = []
    counts = {"matching": 0, "gaining": 0, "losing": 0}
    holders: Mapping[uuid.UUID, list[Any]] = {}
    target: tuple[uuid.UUID | None, uuid.UUID | None] = (None, None)
    if rule is not None:
        holders = repository.rule_holders(session, rule.id, clock.now())
        target = ((preview_in.role_id, preview_in.entitlement_id)
                  if preview_in.role_id or preview_in.entitlement_id
                  else (rule.role_id, rule.entitlement_id))

    def note(kind: str, found: list[Identity], identity: Identity) -> None:
        counts[kind] += 1
        if len(found) < PREVIEW_LIMIT:
            found.append(identity)

    for identity, subject in repository.population(session):
        hit = matches(preview_in.condition, subject)
        if hit:
            note("matching", matching, identity)
        if rule is None:
            continue
        held = {(r, e) for r, e, _until in holders.get(identity.id, [])}
        if hit and target not in held:
            note("gaining", gaining, identity)
        if held and (not hit or held != {target}):
            note("losing", losing, identity)
    if rule is None:
        return Preview(matching_count=counts["matching"], matching=matching)
    return Preview(matching_count=counts["matching"], matching=matching,
                   gaining_count=counts["gaining"], gaining=gaining,
                   losing_count=counts["losing"], losing=losing)
