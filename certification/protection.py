"""Protected access: what a certification revoke never removes by itself (it escalates).

An assignment is protected when revoking it would take away, from its identity:

- **the last owner or administrator of an application**: a *privileged* entitlement
  (``Entitlement.privileged``) of an application that no other assignment of the identity
  still gives, where the identity is the application's owner (``Application.owner_id``), or
  where nobody else holds that privileged entitlement (directly or through a role, as in
  force now);
- **a break-glass account**: the identity itself is marked break-glass
  (``Identity.attributes["break_glass"]`` true), or it has an account in an application the
  assignment reaches whose attributes mark it break-glass (``Account.attributes
  ["break_glass"]`` true, or ``Account.attributes["purpose"] == "break-glass"``).

Role assignments are judged over the entitlements the role gives now (its closure). An
assignment that has already ended is never protected: there is nothing left to remove.

:func:`protection_reasons` judges a chunk of revocations at once, in a fixed number of
queries, as if they were judged and carried out one after another in the given order: an
assignment revoked earlier in the chunk no longer gives anything (the first of two last
administrators may go, the second then escalates); an escalated one stays.
"""

from __future__ import annotations

import uuid
from collections import Counter, defaultdict
from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import String, cast, func, or_, select, union
from sqlalchemy.orm import Session

from idgov.assignments.repository import in_force
from idgov.models.application import Account, Application
from idgov.models.assignment import Assignment
from idgov.models.catalog import Entitlement, RoleEntitlement, RoleInclusion
from idgov.models.identity import Identity
from idgov.provisioning.revocations import entitlements_given, held_by_others

BREAK_GLASS_PURPOSE = "break-glass"


def _valid_at(model: Any, at: datetime) -> Any:
    return (model.valid_from <= at) & (or_(model.valid_until.is_(None), model.valid_until > at))


def _ended(assignment: Assignment, at: datetime) -> bool:
    return assignment.revoked_at is not None or (
        assignment.valid_until is not None and assignment.valid_until <= at)


def marks_break_glass(attributes: dict[str, Any] | None) -> bool:
    """Whether an identity's or an account's attributes mark it break-glass."""
    found = attributes or {}
    flag = found.get("break_glass")
    return flag is True or str(flag).lower() in ("true", "yes", "1") or \
        found.get("purpose") == BREAK_GLASS_PURPOSE


def _stable_holders(session: Session, *, entitlement_ids: Collection[uuid.UUID],
                    exclude: Collection[uuid.UUID], at: datetime,
                    ) -> dict[uuid.UUID, tuple[int, uuid.UUID]]:
    """entitlement id -> (how many identities hold it at ``at``, one of them) through
    assignments other than ``exclude`` (directly, or through a role that gives it, or a
    role that includes such a role), in one statement."""
    if not entitlement_ids:
        return {}
    wanted = list(entitlement_ids)
    others = [in_force(at), Assignment.id.not_in(list(exclude))]
    givers = select(RoleEntitlement.entitlement_id.label("ent"),
                    RoleEntitlement.role_id.label("role_id")).where(
        RoleEntitlement.entitlement_id.in_(wanted), _valid_at(RoleEntitlement, at)
    ).cte("givers", recursive=True)
    givers = givers.union(
        select(givers.c.ent, RoleInclusion.parent_role_id)
        .join(givers, RoleInclusion.child_role_id == givers.c.role_id)
        .where(_valid_at(RoleInclusion, at)))
    direct = select(Assignment.entitlement_id.label("ent"),
                    Assignment.identity_id.label("who")).where(
        Assignment.entitlement_id.in_(wanted), *others)
    via_role = (select(givers.c.ent, Assignment.identity_id)
                .join(givers, Assignment.role_id == givers.c.role_id).where(*others))
    holders = union(direct, via_role).subquery()
    stmt = (select(holders.c.ent, func.count(), func.min(cast(holders.c.who, String)))
            .group_by(holders.c.ent))
    return {ent: (n, uuid.UUID(str(one))) for ent, n, one in session.execute(stmt)}


class _Chunk:
    """What judging a chunk needs, read once: the rows of every rule, and who still holds
    what while the chunk is worked through."""

    def __init__(self, session: Session, live: Sequence[Assignment], at: datetime) -> None:
        ids = [a.id for a in live]
        people = {a.identity_id for a in live}
        self.identities = {i.id: i for i in session.scalars(
            select(Identity).where(Identity.id.in_(people)))}
        self.gives = entitlements_given(session, assignment_ids=ids, at=at)
        self.held = held_by_others(session, identity_ids=people, exclude=ids, at=at)
        applications = {app for rows in self.gives.values() for _e, app in rows}
        self.glass: dict[tuple[uuid.UUID, uuid.UUID], str] = {}
        if applications:
            for account in session.scalars(select(Account).where(
                    Account.identity_id.in_(people), Account.application_id.in_(applications),
                    Account.status != "deleted").order_by(Account.username, Account.id)):
                if account.identity_id is not None and marks_break_glass(account.attributes):
                    self.glass.setdefault((account.identity_id, account.application_id),
                                          str(account.username or account.native_id))
        entitlements = {e for rows in self.gives.values() for e, _app in rows}
        self.privileged = list(session.execute(
            select(Entitlement.id, Entitlement.name, Application.name, Application.owner_id)
            .join(Application, Application.id == Entitlement.application_id)
            .where(Entitlement.id.in_(entitlements), Entitlement.privileged.is_(True))
            .order_by(Entitlement.name))) if entitlements else []
        self.stable = _stable_holders(session, entitlement_ids=[p[0] for p in self.privileged],
                                      exclude=ids, at=at)
        # The chunk's assignments in force (not revoked yet), per identity and per
        # privileged entitlement they give.
        self.live_of: dict[uuid.UUID, list[Assignment]] = defaultdict(list)
        self.givers: dict[uuid.UUID, Counter[uuid.UUID]] = defaultdict(Counter)
        for a in live:
            if a.valid_from <= at:
                self.live_of[a.identity_id].append(a)
                for e, _app in self.gives[a.id]:
                    self.givers[e][a.identity_id] += 1

    def revoked(self, a: Assignment) -> None:
        if a in self.live_of[a.identity_id]:
            self.live_of[a.identity_id].remove(a)
            for e, _app in self.gives[a.id]:
                self.givers[e][a.identity_id] -= 1

    def others_hold(self, entitlement_id: uuid.UUID, identity_id: uuid.UUID) -> bool:
        count, one = self.stable.get(entitlement_id, (0, identity_id))
        if count > 1 or (count == 1 and one != identity_id):
            return True
        return any(n > 0 and who != identity_id
                   for who, n in self.givers[entitlement_id].items())

    def reason(self, a: Assignment) -> str | None:
        identity = self.identities.get(a.identity_id)
        if identity is not None and marks_break_glass(identity.attributes):
            return "break-glass account: the identity is marked break-glass"
        rows = self.gives[a.id]
        accounts = sorted(self.glass[(a.identity_id, app)] for app in {x for _e, x in rows}
                          if (a.identity_id, app) in self.glass)
        if accounts:
            return f"break-glass account {accounts[0]}"
        elsewhere = set(self.held.get(a.identity_id, ()))
        for other in self.live_of[a.identity_id]:
            if other is not a:
                elsewhere.update(e for e, _app in self.gives[other.id])
        lost = {e for e, _app in rows} - elsewhere
        for entitlement_id, name, app_name, owner_id in self.privileged:
            if entitlement_id not in lost:
                continue
            if owner_id == a.identity_id:
                return f"owner of {app_name} holding the privileged entitlement {name}"
            if not self.others_hold(entitlement_id, a.identity_id):
                return f"last holder of the privileged entitlement {name} of {app_name}"
        return None


def protection_reasons(session: Session, *, assignments: Sequence[Assignment],
                       at: datetime) -> dict[uuid.UUID, str]:
    """Why each of ``assignments`` must be escalated instead of revoked, when they are
    revoked one after another in this order at ``at`` (those not escalated are gone before
    the next is judged): assignment id -> reason, for the protected ones only. A fixed
    number of queries, whatever the number of assignments."""
    live = [a for a in assignments if not _ended(a, at)]
    if not live:
        return {}
    chunk = _Chunk(session, live, at)
    reasons: dict[uuid.UUID, str] = {}
    for a in live:
        reason = chunk.reason(a)
        if reason is None:
            chunk.revoked(a)
        else:
            reasons[a.id] = reason
    return reasons


def protection_reason(session: Session, *, assignment: Assignment, at: datetime) -> str | None:
    """Why revoking ``assignment`` at ``at`` must be escalated instead, or None when it may
    be revoked (see the module doc for the rule)."""
    return protection_reasons(session, assignments=[assignment], at=at).get(assignment.id)
