"""Birthright access: what an identity's HR attributes entitle it to, kept in its assignments.

The rules are evaluated by the pure :mod:`idgov.policy.birthright`; this module loads the
rules and the identity's subject, and turns the difference between what the rules give and
what the identity's birthright assignments hold into grants, scheduled ends (after a grace
period, for movers) and ends taken back. Every change goes through
:mod:`idgov.assignments.service`, so it is audited and its provisioning operations are
recorded as for any grant. Services flush, never commit.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from idgov.assignments import service as assignments
from idgov.birthright import repository
from idgov.clock import Clock
from idgov.db.repository import get_or_404
from idgov.errors import Conflict
from idgov.models.assignment import Assignment
from idgov.models.hr import HrSource
from idgov.models.identity import Identity
from idgov.policy.birthright import RuleSpec, evaluate
from idgov.types import Actor

# The grace period for identities that no HR source owns (created by hand).
DEFAULT_GRACE = timedelta(days=7)
END_REASON = "birthright rule no longer matches"


@dataclass(frozen=True)
class Skipped:
    """A grant left out, and why: the identity already holds the same thing through
    another assignment (``blocking_assignment_id``)."""

    rule_id: uuid.UUID
    rule_name: str
    blocking_assignment_id: uuid.UUID | None
    reason: str


@dataclass
class RecomputeResult:
    """What :func:`recompute` changed for one identity.

    ``granted``: new birthright assignments; ``ending``: assignments given an end after the
    grace period; ``restored``: ending assignments whose end was taken back; ``revoked``:
    assignments not started yet whose rule no longer matches, ended at once (no grace
    for access never held; also every one ending with a zero grace); ``skipped``: grants
    left out because the access is held through another open-ended assignment.
    """

    granted: list[Assignment] = field(default_factory=list)
    ending: list[Assignment] = field(default_factory=list)
    restored: list[Assignment] = field(default_factory=list)
    revoked: list[Assignment] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.granted or self.ending or self.restored or self.revoked)


def spec_of(rule: Any) -> RuleSpec:
    """The evaluator's view of a rule row."""
    return RuleSpec(id=rule.id, name=rule.name, condition=dict(rule.condition or {}),
                    role_id=rule.role_id, entitlement_id=rule.entitlement_id)


def load_rules(session: Session) -> list[RuleSpec]:
    """The enabled birthright rules, ordered by name."""
    return [spec_of(rule) for rule in repository.enabled_rules(session)]


def subject_of(session: Session, identity: Identity) -> dict[str, Any]:
    """What rules read of ``identity``: its HR fields (department, location, job_code,
    job_title, cost_center, employment_type), ``groups`` (names of its organisational
    groups, sorted) and ``attributes`` (its extra HR attributes)."""
    groups = repository.organisation_groups(session, [identity.id]).get(identity.id, [])
    return repository.subject_fields(identity, groups)


def grace_for(session: Session, identity: Identity) -> timedelta:
    """The mover grace period of the HR source that owns ``identity`` (else 7 days)."""
    if identity.hr_source_id is not None:
        source = session.get(HrSource, identity.hr_source_id)
        if source is not None:
            return timedelta(days=source.mover_grace_days)
    return DEFAULT_GRACE


def _target(a: Assignment | RuleSpec) -> tuple[uuid.UUID | None, uuid.UUID | None]:
    return a.role_id, a.entitlement_id


def _is_ending(session: Session, assignment: Assignment) -> bool:
    """Whether the assignment carries a scheduled end (not just its entitlement's cap)."""
    if assignment.valid_until is None:
        return False
    natural = assignments.natural_end(session, assignment)
    return natural is None or assignment.valid_until < natural


def _end(session: Session, assignment: Assignment, *, now: datetime, grace: timedelta,
         actor: Actor, clock: Clock, result: RecomputeResult) -> None:
    at = now + grace
    if assignment.valid_from > now or grace <= timedelta(0):
        result.revoked.append(assignments.revoke(
            session, assignment_id=assignment.id, reason=END_REASON, actor=actor, clock=clock))
    elif assignment.valid_until is None or assignment.valid_until > at:
        result.ending.append(assignments.schedule_end(
            session, assignment_id=assignment.id, at=at, reason=END_REASON, actor=actor,
            clock=clock))


def _grant(session: Session, rule: RuleSpec, *, identity_id: uuid.UUID, reason: str,
           valid_from: datetime | None, actor: Actor, clock: Clock,
           result: RecomputeResult) -> None:
    """Grant ``rule``'s target; when a time-bound assignment of the same thing is in the
    way, from its end (so access continues), when an open-ended one is, not at all."""
    start = valid_from
    for _attempt in range(3):
        try:
            result.granted.append(assignments.grant(
                session, identity_id=identity_id, role_id=rule.role_id,
                entitlement_id=rule.entitlement_id, source="birthright", reason=reason,
                valid_from=start, valid_until=None, birthright_rule_id=rule.id, actor=actor,
                clock=clock))
            return
        except Conflict as exc:
            blocking_id = exc.extra.get("assignment_id")
            blocking = (session.get(Assignment, uuid.UUID(blocking_id)) if blocking_id
                        else None)
            if blocking is None or blocking.valid_until is None:
                result.skipped.append(Skipped(
                    rule_id=rule.id, rule_name=rule.name,
                    blocking_assignment_id=blocking.id if blocking else None,
                    reason=exc.detail))
                return
            start = blocking.valid_until
    result.skipped.append(Skipped(rule_id=rule.id, rule_name=rule.name,
                                  blocking_assignment_id=None,
                                  reason="held through a chain of other assignments"))


def recompute(session: Session, *, identity_id: uuid.UUID, grace: timedelta, actor: Actor,
              clock: Clock, reason: str, rules: Sequence[RuleSpec] | None = None,
              valid_from: datetime | None = None) -> RecomputeResult:
    """Bring one identity's birthright assignments in line with the rules it matches now.

    ``rules`` are the enabled rules (:func:`load_rules` when None: pass them in when
    recomputing many identities). Birthright assignments not ended (in force or still to
    start) are compared with the matching rules, by rule and target:

    * a matching rule without one is granted (source ``birthright``, ``reason``, from
      ``valid_from``, default now). When the identity holds the same thing through a
      time-bound assignment, the grant starts at that assignment's end; through an
      open-ended one, the grant is left out and reported in ``skipped`` (the access is
      held; a later recompute grants it once that assignment has ended);
    * one whose rule no longer matches (or is disabled, or now targets something else)
      ends at now + ``grace`` (:func:`idgov.assignments.service.schedule_end`; the expiry
      sweep ends it and records the revokes) unless it already ends earlier; one not
      started yet, or any with a zero grace, is revoked at once;
    * one that is ending but whose rule matches again gets its end taken back
      (:func:`idgov.assignments.service.clear_end`); when another assignment of the same
      thing follows it, the end stays and the rule is reported in ``skipped``.

    A terminated identity gets nothing and nothing is changed (leaving ends its access).
    Raises NotFound for an unknown identity.
    """
    identity = get_or_404(session, Identity, identity_id, what="identity")
    result = RecomputeResult()
    if identity.lifecycle_state == "terminated":
        return result
    if rules is None:
        rules = load_rules(session)
    now = clock.now()
    wanted = {(rule.id, *_target(rule)): rule
              for rule in evaluate(rules, subject_of(session, identity))}
    held: dict[tuple[uuid.UUID | None, uuid.UUID | None, uuid.UUID | None],
               list[Assignment]] = {}
    for assignment in repository.live_birthright(session, identity_id, now):
        key = (assignment.birthright_rule_id, *_target(assignment))
        if key in wanted:
            held.setdefault(key, []).append(assignment)
        else:
            _end(session, assignment, now=now, grace=grace, actor=actor, clock=clock,
                 result=result)
    for key, rule in wanted.items():
        mine = held.get(key)
        if not mine:
            _grant(session, rule, identity_id=identity_id, reason=reason,
                   valid_from=valid_from, actor=actor, clock=clock, result=result)
            continue
        for assignment in mine:
            if not _is_ending(session, assignment):
                continue
            try:
                result.restored.append(assignments.clear_end(
                    session, assignment_id=assignment.id, actor=actor, clock=clock))
            except Conflict as exc:
                result.skipped.append(Skipped(
                    rule_id=rule.id, rule_name=rule.name,
                    blocking_assignment_id=uuid.UUID(exc.extra["assignment_id"])
                    if exc.extra.get("assignment_id") else None, reason=exc.detail))
    return result
