"""Applying decided role composition review items (called through
:func:`certification.composition.apply_composition_items` by the remediation module).

- **certify** -> :func:`idgov.catalog.composition.certify_link` (the link's last certified
  at / by = who decided the item); remediation stays ``none``, ``remediated_at`` says when
  it took effect (as for assignments).
- **revoke** -> :func:`idgov.catalog.composition.end_entitlement` /
  :func:`~idgov.catalog.composition.end_inclusion` (reason ``certification: <campaign
  name>``): the link is end-dated now and every holder of the role who loses an
  entitlement by it gets its provisioning revoke operation (cause ``catalog_change``, cause
  id = the link); remediation ``requested``, then
  :func:`certification.verification.verify_remediation` follows those operations. A link
  that already ended is not ended again: the item is ``requested`` and followed through the
  operations of that end.
- **protected access** is never taken away by ending a link, whether a reviewer or the
  deadline decided the revoke: when some holder would lose, through the end, a privileged
  entitlement of an application they own, the last holding of a privileged entitlement
  anywhere (its application would keep no administrator), or anything while they are
  break-glass (the identity, or their account in an application of what they lose), the
  item goes ``escalated`` with the reason and the link stays. Who loses what comes from
  :func:`idgov.catalog.impact.preview` (the same computation the change would record).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import exists, or_, select
from sqlalchemy.orm import Session

from certification.models import ReviewItem
from certification.protection import marks_break_glass
from idgov.assignments.repository import in_force
from idgov.catalog import composition as catalog
from idgov.catalog.impact import Impact, preview
from idgov.catalog.schemas import RoleImpactIn
from idgov.errors import NotFound
from idgov.models.application import Account, Application
from idgov.models.assignment import Assignment
from idgov.models.catalog import Entitlement, RoleEntitlement, RoleInclusion
from idgov.models.identity import Identity
from idgov.policy.snapshot import ItemRef

if TYPE_CHECKING:
    from certification.remediation import _Batch


def link_of(session: Session, item: ReviewItem) -> RoleEntitlement | RoleInclusion:
    """The composition link an item reviews (NotFound: RESTRICT keeps it, so a bug)."""
    link: RoleEntitlement | RoleInclusion | None = None
    if item.role_entitlement_id is not None:
        link = session.get(RoleEntitlement, item.role_entitlement_id)
    elif item.role_inclusion_id is not None:
        link = session.get(RoleInclusion, item.role_inclusion_id)
    if link is None:
        raise NotFound(f"the composition link of review item {item.id} does not exist")
    return link


def ended(link: RoleEntitlement | RoleInclusion, at: datetime) -> bool:
    """The link's end is in force at ``at``."""
    return link.valid_until is not None and link.valid_until <= at


def _parent(link: RoleEntitlement | RoleInclusion) -> uuid.UUID:
    return link.role_id if isinstance(link, RoleEntitlement) else link.parent_role_id


def _impact(session: Session, link: RoleEntitlement | RoleInclusion, batch: _Batch) -> Impact:
    proposal = (RoleImpactIn(end_entitlements=[link.entitlement_id])
                if isinstance(link, RoleEntitlement)
                else RoleImpactIn(end_inclusions=[link.child_role_id]))
    return preview(session, role_id=_parent(link), proposal=proposal, clock=batch.clock)


def _still_held(session: Session, impact: Impact, entitlement_id: uuid.UUID,
                at: datetime) -> bool:
    """Whether anyone would still hold the entitlement once the link ended (directly, or
    through a role that gives it in the composition after the change)."""
    givers = impact.after.holders_of(ItemRef("entitlement", entitlement_id))
    held = exists().where(in_force(at), or_(Assignment.entitlement_id == entitlement_id,
                                            Assignment.role_id.in_(givers)))
    return bool(session.scalar(select(held)))


def protection_reason(session: Session, link: RoleEntitlement | RoleInclusion,
                      batch: _Batch) -> str | None:
    """Why ending ``link`` now must be escalated instead (see the module doc), or None."""
    at = batch.clock.now()
    impact = _impact(session, link, batch)
    losers = {c.identity_id: c for c in impact.changes if c.losses}
    if not losers:
        return None
    lost = {e for c in losers.values() for e in c.losses}
    people = {i.id: i for i in session.scalars(select(Identity).where(
        Identity.id.in_(losers)))}
    for identity_id, change in sorted(losers.items(), key=lambda kv: kv[1].display_name):
        person = people.get(identity_id)
        if person is not None and marks_break_glass(person.attributes):
            return f"break-glass account: {change.display_name} would lose access"
    apps = {a for (a,) in session.execute(select(Entitlement.application_id).where(
        Entitlement.id.in_(lost)))}
    for account in session.scalars(select(Account).where(
            Account.identity_id.in_(losers), Account.application_id.in_(apps),
            Account.status != "deleted").order_by(Account.native_id)):
        if account.identity_id is None:
            continue
        mine = losers[account.identity_id].losses
        if marks_break_glass(account.attributes) and session.scalar(select(exists().where(
                Entitlement.id.in_(mine),
                Entitlement.application_id == account.application_id))):
            return f"break-glass account {account.username or account.native_id}"
    privileged = session.execute(
        select(Entitlement.id, Entitlement.name, Application.name, Application.owner_id)
        .join(Application, Application.id == Entitlement.application_id)
        .where(Entitlement.id.in_(lost), Entitlement.privileged.is_(True))
        .order_by(Entitlement.name))
    for entitlement_id, name, app_name, owner_id in privileged:
        owner = losers.get(owner_id) if owner_id is not None else None
        if owner is not None and entitlement_id in owner.losses:
            return (f"{owner.display_name}, owner of {app_name}, would lose the privileged "
                    f"entitlement {name}")
        if not _still_held(session, impact, entitlement_id, at):
            return (f"nobody would keep the privileged entitlement {name} of {app_name}: "
                    "its last holders get it through this link")
    return None


def _certify(session: Session, item: ReviewItem, batch: _Batch) -> None:
    now = batch.clock.now()
    catalog.certify_link(session, role_entitlement_id=item.role_entitlement_id,
                         role_inclusion_id=item.role_inclusion_id, at=now,
                         by=(item.decided_by or batch.actor.label)[:400], actor=batch.actor,
                         clock=batch.clock)
    item.remediated_at = now
    batch.counts["certified"] += 1


def _revoke(session: Session, item: ReviewItem, batch: _Batch) -> None:
    link = link_of(session, item)
    if ended(link, batch.clock.now()):
        batch.set(item, "requested", note="the link had already ended")
        return
    reason = protection_reason(session, link, batch)
    if reason is not None:
        batch.set(item, "escalated", reason=reason)
        return
    why = f"certification: {batch.campaign.name}"[:2000]
    if isinstance(link, RoleEntitlement):
        catalog.end_entitlement(session, role_id=link.role_id,
                                entitlement_id=link.entitlement_id, reason=why,
                                actor=batch.actor, clock=batch.clock)
    else:
        catalog.end_inclusion(session, role_id=link.parent_role_id,
                              child_role_id=link.child_role_id, reason=why,
                              actor=batch.actor, clock=batch.clock)
    batch.set(item, "requested")


def apply_links(session: Session, items: Sequence[ReviewItem], batch: _Batch) -> None:
    """Certify or end the links of decided composition items (see the module doc)."""
    for item in items:
        if item.decision == "certify":
            _certify(session, item, batch)
        elif item.decision == "revoke":
            _revoke(session, item, batch)
