"""Micro-certification trigger ``unused``: access the target says is not used.

Aggregation and reconciliation keep the last sign-in a target tells of in the primary
account's attributes (``last_sign_in``, :data:`certification.context.LAST_SIGN_IN_KEY`).
An assignment in force of an active person, held for longer than ``unused_days``, is unused
when the holder's primary account in the access's application was last signed in to longer
ago than ``unused_days``; for a role, when that holds in every application the role reaches
(a role reaching none is never unused). No known sign-in is not "unused": the target may
simply not tell.

Key ``unused:<assignment id>:<last sign-in>`` (for a role, the latest sign-in of its
applications): the same idle period is reviewed once; a later sign-in followed by a new idle
period makes a new key. Reviewer: the holder's manager, else the application's owner (a
role's single application; none for a role spanning several), else nobody.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from certification.context import LAST_SIGN_IN_KEY
from certification.micro_sources import Candidate, People, application_owners, chunked, utc_text
from idgov.assignments.repository import in_force
from idgov.models.application import Account
from idgov.models.assignment import Assignment
from idgov.models.identity import Identity
from idgov.policy.snapshot import PolicySnapshot

# A sign-in's text is compared in SQL to narrow the accounts read; a day of slack covers
# any offset a value may carry, the exact test is made on the parsed value.
_SLACK = timedelta(days=1)


def _parse(text: object) -> datetime | None:
    if not isinstance(text, str):
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        return None
    return value if value.tzinfo is not None else None


def stale_sign_ins(session: Session, *, cutoff: datetime
                   ) -> dict[tuple[uuid.UUID, uuid.UUID], datetime]:
    """(identity, application) -> last sign-in, for the primary accounts of active people
    last signed in to before ``cutoff``."""
    seen = Account.attributes[LAST_SIGN_IN_KEY].as_string()
    rows = session.execute(
        select(Account.identity_id, Account.application_id, seen)
        .join(Identity, Identity.id == Account.identity_id)
        .where(Account.account_type == "primary", seen.is_not(None),
               seen < (cutoff + _SLACK).isoformat(), Identity.lifecycle_state == "active"))
    found: dict[tuple[uuid.UUID, uuid.UUID], datetime] = {}
    for identity_id, application_id, text in rows:
        value = _parse(text)
        if identity_id is not None and value is not None and value < cutoff:
            found[identity_id, application_id] = value
    return found


def idle_since(applications: frozenset[uuid.UUID], identity_id: uuid.UUID,
               stale: Mapping[tuple[uuid.UUID, uuid.UUID], datetime]) -> datetime | None:
    """The latest sign-in over ``applications`` when every one of them is stale for the
    identity (None when one is not, or there is none)."""
    if not applications:
        return None
    found = [stale.get((identity_id, a)) for a in applications]
    if any(f is None for f in found):
        return None
    return max(f for f in found if f is not None)


def _applications(snapshot: PolicySnapshot, role_id: uuid.UUID | None,
                  entitlement_id: uuid.UUID | None) -> frozenset[uuid.UUID]:
    if role_id is not None:
        memo = snapshot.memo("certification.micro_unused.apps")
        found: frozenset[uuid.UUID] | None = memo.get(role_id)
        if found is None:
            nodes = snapshot.entitlements
            found = memo[role_id] = frozenset(
                nodes[e].application_id for e in snapshot.closure(role_id).entitlement_set
                if e in nodes)
        return found
    node = snapshot.entitlements.get(entitlement_id)  # type: ignore[arg-type]
    return frozenset() if node is None else frozenset((node.application_id,))


def unused_candidates(session: Session, *, now: datetime, unused_days: int,
                      snapshot: PolicySnapshot, people: People) -> list[Candidate]:
    """The unused assignments (see the module doc), by holder."""
    cutoff = now - timedelta(days=unused_days)
    stale = stale_sign_ins(session, cutoff=cutoff)
    holders = sorted({i for i, _a in stale}, key=str)
    if not holders:
        return []
    rows: list[Any] = []
    for batch in chunked(holders):
        rows.extend(session.execute(
            select(Assignment.id, Assignment.identity_id, Assignment.role_id,
                   Assignment.entitlement_id)
            .where(Assignment.identity_id.in_(batch), in_force(now),
                   Assignment.valid_from <= cutoff)
            .order_by(Assignment.identity_id, Assignment.valid_from, Assignment.id)))
    owners = application_owners(session)
    people.prepare(holders, owners.values())
    found: list[Candidate] = []
    for a_id, identity_id, role_id, ent_id in rows:
        applications = _applications(snapshot, role_id, ent_id)
        last = idle_since(applications, identity_id, stale)
        if last is None:
            continue
        single = next(iter(applications)) if len(applications) == 1 else None
        reviewer, rule = people.choose(identity_id, (
            ("manager", people.manager.get(identity_id)),
            ("application_owner", owners.get(single) if single else None)))
        signed_in = utc_text(last)
        found.append(Candidate(
            assignment_id=a_id, identity_id=identity_id, key=f"unused:{a_id}:{signed_in}",
            ref=str(a_id), reviewer_id=reviewer, reviewer_rule=rule,
            context={"last_sign_in": signed_in, "idle_days": (now - last).days,
                     "unused_after_days": unused_days}))
    return found
