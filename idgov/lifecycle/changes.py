"""Applying one identity's change (all but joiners): through the same services as any
other change, so every rule, audit event and provisioning operation is the usual one.

- update / mover / conversion / leaver / rehire: the identity's HR fields are updated
  (``idgov.identities.service.update_identity``, which also pushes mapped attributes to the
  accounts), organisational group memberships follow the record;
- mover and conversion: birthright access is recomputed (new grants now, old ones ending
  after the source's grace period) and requested access is flagged for the (new) manager;
- leaver: the termination takes effect at its time (the local end of the termination day
  unless HR gives a time), at once when immediate or already due, else it is scheduled;
- rehire: the identity is reinstated, its birthright access recomputed, day-one access sent;
- a withdrawn termination cancels the scheduled one; a new hire date moves the activation.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy.orm import Session

from idgov.audit.service import apply_changes
from idgov.birthright import service as birthright
from idgov.clock import Clock
from idgov.groups import service as groups
from idgov.identities.schemas import IdentityUpdate
from idgov.identities.service import update_identity
from idgov.lifecycle import events, review_flags, timing
from idgov.lifecycle.joiners import JoinerContext, ensure_groups, zone_for
from idgov.lifecycle.planner import PlannedChange
from idgov.lifecycle.records import IDENTITY_COLUMNS
from idgov.lifecycle.repository import group_ids_by_name
from idgov.models.hr import HrSource
from idgov.models.identity import Identity
from idgov.policy.birthright import RuleSpec
from idgov.types import Actor


def _identity_changes(change: PlannedChange, ctx: JoinerContext) -> dict[str, Any]:
    after = change.after
    out: dict[str, Any] = {c: after.get(c) for c in change.changed if c in IDENTITY_COLUMNS}
    if "display_name" in out and not out["display_name"]:
        out["display_name"] = f"{after.get('given_name')} {after.get('family_name')}"
    if "employment_type" in out and not out["employment_type"]:
        out["employment_type"] = "employee"
    if "manager_employee_id" in change.changed:
        manager = after.get("manager_employee_id")
        out["manager_id"] = ctx.ids.get(manager) if manager else None
    if "attributes" in change.changed:
        out["attributes"] = dict(after.get("attributes") or {})
    return out


def _sync_groups(session: Session, identity_id: uuid.UUID, change: PlannedChange,
                 ctx: JoinerContext) -> None:
    wanted = set(change.after.get("groups") or ())
    held = set((change.before or {}).get("groups") or ())
    ensure_groups(session, wanted, ctx)
    ids = group_ids_by_name(session, wanted | held)
    for name in sorted(wanted - held):
        groups.add_member(session, group_id=ids[name], identity_id=identity_id,
                          actor=ctx.actor, clock=ctx.clock)
    for name in sorted(held - wanted):
        if name in ids:
            groups.remove_member(session, group_id=ids[name], identity_id=identity_id,
                                 actor=ctx.actor, clock=ctx.clock)


def _rekey(session: Session, identity_id: uuid.UUID, employee_id: str,
           ctx: JoinerContext) -> None:
    """HR gave the person a new key (``previous_employee_id`` named the old one)."""
    identity = session.get(Identity, identity_id)
    assert identity is not None
    apply_changes(session, identity, {"employee_id": employee_id}, action="identity.rekey",
                  object_type="identity", actor=ctx.actor, clock=ctx.clock)
    ctx.ids[employee_id] = identity_id


def apply_change(session: Session, change: PlannedChange, *, change_id: uuid.UUID,
                 ctx: JoinerContext, rules: list[RuleSpec]) -> None:
    """Apply one non-joiner change (the identity exists)."""
    assert change.identity_id is not None
    identity_id = change.identity_id
    actor, clock, source = ctx.actor, ctx.clock, ctx.source
    if "employee_id" in change.changed:
        _rekey(session, identity_id, change.employee_id, ctx)
    updates = _identity_changes(change, ctx)
    if change.kind == "leaver" and change.after.get("termination_date") is None:
        zone = zone_for(source, change.after)
        updates["termination_date"] = clock.now().astimezone(zone).date()
    if updates:
        update_identity(session, identity_id=identity_id,
                        identity_in=IdentityUpdate(**updates), actor=actor, clock=clock)
    if "groups" in change.changed:
        _sync_groups(session, identity_id, change, ctx)
    identity = session.get(Identity, identity_id)
    assert identity is not None
    reason = f"HR feed: {change.kind}"
    if change.kind in ("mover", "conversion"):
        _recompute(session, identity, source=source, rules=rules, actor=actor, clock=clock,
                   reason=reason)
        reviewer = identity.manager_id
        review_flags.flag_requested_access(
            session, identity_id=identity_id, reviewer_id=reviewer, change_id=change_id,
            reason=f"{identity.display_name} moved ({', '.join(change.changed)}): "
                   "access requested for the old position needs a new decision",
            actor=actor, clock=clock)
    elif change.kind == "leaver":
        _leave(session, identity, change=change, change_id=change_id, ctx=ctx)
    elif change.kind == "rehire":
        _rehire(session, identity, change_id=change_id, ctx=ctx, rules=rules)
    else:
        _update(session, identity, change=change, change_id=change_id, ctx=ctx, rules=rules)


def _recompute(session: Session, identity: Identity, *, source: HrSource,
               rules: list[RuleSpec], actor: Actor, clock: Clock, reason: str) -> None:
    start = None
    if identity.lifecycle_state == "prehire" and identity.hire_date is not None:
        start = timing.hire_instant(identity.hire_date, zone_for(source, _values(identity)))
    birthright.recompute(session, identity_id=identity.id,
                         grace=timedelta(days=source.mover_grace_days), actor=actor,
                         clock=clock, reason=reason, rules=rules,
                         valid_from=start if start and start > clock.now() else None)


def _values(identity: Identity) -> dict[str, Any]:
    return {"time_zone": identity.time_zone, "location": identity.location}


def _leave(session: Session, identity: Identity, *, change: PlannedChange,
           change_id: uuid.UUID, ctx: JoinerContext) -> None:
    now = ctx.clock.now()
    zone = zone_for(ctx.source, change.after)
    termination = identity.termination_date
    due = now
    if not change.immediate and termination is not None:
        due = timing.termination_instant(termination, zone,
                                         change.after.get("termination_time"))
    reason = change.note or ("terminated with immediate effect" if change.immediate
                             else "termination date reached")
    if due <= now:
        events.terminate(session, identity_id=identity.id, reason=f"HR feed: {reason}",
                         retention=timedelta(days=ctx.source.account_retention_days),
                         actor=ctx.actor, clock=ctx.clock, run_id=ctx.run_id,
                         change_id=change_id)
    else:
        events.schedule(session, identity_id=identity.id, kind="terminate", due_at=due,
                        reason=f"HR feed: {reason}", clock=ctx.clock, run_id=ctx.run_id,
                        change_id=change_id)


def _hire_start(identity: Identity, ctx: JoinerContext) -> Any:
    if identity.hire_date is None:
        return None
    return timing.hire_instant(identity.hire_date, zone_for(ctx.source, _values(identity)))


def _rehire(session: Session, identity: Identity, *, change_id: uuid.UUID,
            ctx: JoinerContext, rules: list[RuleSpec]) -> None:
    now = ctx.clock.now()
    start = _hire_start(identity, ctx)
    prehire = start is not None and start > now
    if identity.termination_date is not None:
        update_identity(session, identity_id=identity.id,
                        identity_in=IdentityUpdate(termination_date=None), actor=ctx.actor,
                        clock=ctx.clock)
    events.reinstate(session, identity_id=identity.id, actor=ctx.actor, clock=ctx.clock,
                     prehire=prehire)
    if prehire:
        events.schedule(session, identity_id=identity.id, kind="activate", due_at=start,
                        reason="hire date reached", clock=ctx.clock, run_id=ctx.run_id,
                        change_id=change_id)
    _recompute(session, identity, source=ctx.source, rules=rules, actor=ctx.actor,
               clock=ctx.clock, reason="HR feed: rehire")


def _update(session: Session, identity: Identity, *, change: PlannedChange,
            change_id: uuid.UUID, ctx: JoinerContext, rules: list[RuleSpec]) -> None:
    if "termination_date" in change.changed and identity.termination_date is None:
        events.cancel_scheduled(session, identity_id=identity.id, kinds=("terminate",),
                                reason="HR withdrew the termination", actor=ctx.actor,
                                clock=ctx.clock)
    if "hire_date" in change.changed and identity.lifecycle_state == "prehire":
        start = _hire_start(identity, ctx)
        if start is not None and start > ctx.clock.now():
            events.schedule(session, identity_id=identity.id, kind="activate", due_at=start,
                            reason="hire date reached", clock=ctx.clock, run_id=ctx.run_id,
                            change_id=change_id)
        else:
            events.activate(session, identity_id=identity.id, actor=ctx.actor,
                            clock=ctx.clock)
            _recompute(session, identity, source=ctx.source, rules=rules, actor=ctx.actor,
                       clock=ctx.clock, reason="HR feed: hire date moved")
