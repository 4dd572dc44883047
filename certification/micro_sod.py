"""Micro-certification trigger ``sod_exception``: an SoD exception reaching its expiry.

An exception (not revoked, of an active person, under an enabled rule) whose ``expires_at``
falls within ``warning_days`` from now asks for a review of the holder's assignments in
force that take part in the rule's conflict: an assignment takes part when it is a side's
role or entitlement, or its role reaches one (the policy snapshot's role closures and rule
index, as SoD evaluation reads them). Only while the conflict stands (something of side A
and something of side B held): a holder who gave one side up needs no review.

Each such assignment is a candidate with ``sod_conflict`` (certifying it needs a comment),
key ``sod_exception:<exception id>:<expires_at>:<assignment id>`` (renewing the exception
with another expiry, or granting a new one, makes new keys; an assignment that starts taking
part later gets its own item), reviewer the holder's manager, else the exception's approver,
else nobody (left to administrators, counted by the caller).
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from certification.micro_sources import Candidate, People, chunked, utc_text
from idgov.assignments.repository import in_force
from idgov.models.assignment import Assignment
from idgov.models.catalog import SodException, SodRule
from idgov.models.identity import Identity
from idgov.policy.snapshot import PolicySnapshot


def _sides(snapshot: PolicySnapshot, position: int, role_id: uuid.UUID | None,
           entitlement_id: uuid.UUID | None) -> tuple[bool, bool]:
    """Whether holding the role or entitlement touches side A, side B of rule ``position``."""
    if role_id is not None:
        closure = snapshot.closure(role_id)
        return position in closure.side_a, position in closure.side_b
    a, b = snapshot.rule_index.by_entitlement.get(entitlement_id,  # type: ignore[arg-type]
                                                  (frozenset(), frozenset()))
    return position in a, position in b


def _holdings(session: Session, identity_ids: set[uuid.UUID], now: datetime
              ) -> dict[uuid.UUID, list[tuple[uuid.UUID, uuid.UUID | None, uuid.UUID | None]]]:
    """(assignment, role, entitlement) in force, by holder."""
    found: dict[uuid.UUID, list[tuple[uuid.UUID, uuid.UUID | None, uuid.UUID | None]]] = \
        defaultdict(list)
    for batch in chunked(sorted(identity_ids, key=str)):
        for a_id, identity_id, role_id, ent_id in session.execute(
                select(Assignment.id, Assignment.identity_id, Assignment.role_id,
                       Assignment.entitlement_id)
                .where(Assignment.identity_id.in_(batch), in_force(now))
                .order_by(Assignment.valid_from, Assignment.id)):
            found[identity_id].append((a_id, role_id, ent_id))
    return found


def sod_candidates(session: Session, *, now: datetime, warning_days: int,
                   snapshot: PolicySnapshot, people: People) -> list[Candidate]:
    """The assignments in the conflict of each exception expiring within ``warning_days``
    (see the module doc), exceptions soonest-expiring first."""
    exceptions = list(session.execute(
        select(SodException.id, SodException.rule_id, SodException.identity_id,
               SodException.approver_id, SodException.control, SodException.expires_at,
               SodRule.name, SodRule.severity)
        .join(SodRule, SodRule.id == SodException.rule_id)
        .join(Identity, Identity.id == SodException.identity_id)
        .where(SodException.revoked_at.is_(None), SodException.expires_at > now,
               SodException.expires_at <= now + timedelta(days=warning_days),
               SodRule.enabled.is_(True), Identity.lifecycle_state == "active")
        .order_by(SodException.expires_at, SodException.id)))
    if not exceptions:
        return []
    holdings = _holdings(session, {e.identity_id for e in exceptions}, now)
    people.prepare((e.identity_id for e in exceptions), (e.approver_id for e in exceptions))
    index = snapshot.rule_index
    found: list[Candidate] = []
    for exc in exceptions:
        position = index.position.get(exc.rule_id)
        if position is None:  # the snapshot has no such enabled rule (changed meanwhile)
            continue
        taking: list[tuple[uuid.UUID, uuid.UUID | None, uuid.UUID | None, str]] = []
        seen_a = seen_b = False
        for a_id, role_id, ent_id in holdings.get(exc.identity_id, ()):
            in_a, in_b = _sides(snapshot, position, role_id, ent_id)
            seen_a, seen_b = seen_a or in_a, seen_b or in_b
            if in_a or in_b:
                taking.append((a_id, role_id, ent_id, "both" if in_a and in_b
                               else "a" if in_a else "b"))
        if not (seen_a and seen_b):
            continue  # no conflict stands: nothing to review before the expiry
        reviewer, rule = people.choose(exc.identity_id, (
            ("manager", people.manager.get(exc.identity_id)), ("approver", exc.approver_id)))
        expires = utc_text(exc.expires_at)
        details: dict[str, Any] = {
            "id": str(exc.id), "rule_id": str(exc.rule_id), "rule": exc.name,
            "control": exc.control, "expires_at": expires,
            "approver_id": str(exc.approver_id) if exc.approver_id else None}
        for a_id, _role_id, _ent_id, side in taking:
            found.append(Candidate(
                assignment_id=a_id, identity_id=exc.identity_id,
                key=f"sod_exception:{exc.id}:{expires}:{a_id}", ref=str(exc.id),
                reviewer_id=reviewer, reviewer_rule=rule, sod_conflict=True,
                context={"sod_exception": details, "sod_side": side,
                         "sod": [{"rule_id": str(exc.rule_id), "rule": exc.name,
                                  "severity": exc.severity, "mitigated": True}]}))
    return found
