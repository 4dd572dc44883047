"""Verification of revocations against the targets: ``requested`` -> ``confirmed`` only when a
reconciliation read of each target concerned shows the access gone.

For an item's assignment, the revoke operations are those recorded for it
(``ProvisioningOperation`` cause ``assignment`` — or ``expiry`` when it expired on its own —,
``cause_id`` = the assignment id, action ``revoke``). A role assignment's operations cover the
role's closure at revocation, so the entitlements to check are read from the operations.

- one operation failed, was cancelled or rolled back -> ``failed`` (stays visible; an
  administrator's retry or resolution puts it back on track: failed items are checked again);
- every operation succeeded, and for each application concerned a succeeded reconciliation
  run started after its operations completed, whose latest such run lists no
  ``unassigned_membership`` drift for (identity, entitlement) -> ``confirmed``; such a drift
  item means the target still shows the access -> ``failed``;
- a manual application cannot be read: its operations' completion (the fulfilment task done
  by a person) is the evidence there;
- no revoke operation at all (another assignment still gives the access, or it never reached
  a target) -> ``confirmed``: nothing had to leave a target;
- anything else (operations under way, no reconciliation yet) -> stays ``requested``.

Role composition items (``role_entitlement_id`` / ``role_inclusion_id``): ending the link
records, for every holder of the role who loses an entitlement by it, a revoke operation
with cause ``catalog_change`` and ``cause_id`` = the link id (the grant operations of the
link's opening share the cause id, so only ``revoke`` counts). While the link's end is not
in force the item stays ``requested``; after that the same rules apply to those operations,
holder by holder: every one succeeded and a later reconciliation of each readable
application shows none of those (holder, entitlement) pairs still there -> ``confirmed``;
one broken or still present -> ``failed``; no operation (nobody lost anything: they hold it
otherwise, or nobody holds the role) -> ``confirmed``. The operations' success alone is not
taken as proof, for the same reason as for an assignment: only reading the target shows
the access gone.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from certification.composition_apply import ended, link_of
from certification.models import ReviewItem
from idgov.audit.service import EventSpec, record_many
from idgov.clock import Clock
from idgov.models.application import Application
from idgov.models.provisioning import DriftItem, ProvisioningOperation, ReconciliationRun
from idgov.types import Actor

CHUNK = 500
BROKEN = frozenset({"failed", "cancelled", "rolled_back"})
UNREADABLE_KINDS = frozenset({"manual"})


@dataclass(frozen=True)
class Verdict:
    state: str  # requested | confirmed | failed
    evidence: dict[str, Any]


def revoke_operations(session: Session, item: ReviewItem) -> list[ProvisioningOperation]:
    """The revoke operations recorded for the item's assignment, or for the end of the
    composition link it reviews."""
    if item.assignment_id is None:
        link_id = item.role_entitlement_id or item.role_inclusion_id
        where = [ProvisioningOperation.cause == "catalog_change",
                 ProvisioningOperation.cause_id == str(link_id)]
    else:
        where = [ProvisioningOperation.identity_id == item.identity_id,
                 ProvisioningOperation.cause.in_(("assignment", "expiry")),
                 ProvisioningOperation.cause_id == str(item.assignment_id)]
    return list(session.scalars(select(ProvisioningOperation).where(
        *where, ProvisioningOperation.action == "revoke")
        .order_by(ProvisioningOperation.ordinal)))


def _latest_run_after(session: Session, application_id: uuid.UUID,
                      after: datetime) -> ReconciliationRun | None:
    return session.scalars(select(ReconciliationRun).where(
        ReconciliationRun.application_id == application_id,
        ReconciliationRun.kind == "reconciliation", ReconciliationRun.state == "succeeded",
        ReconciliationRun.started_at >= after)
        .order_by(ReconciliationRun.started_at.desc()).limit(1)).first()


def _still_there(session: Session, run: ReconciliationRun,
                 ops: Sequence[ProvisioningOperation]) -> bool:
    """Whether the run still finds one of the operations' (identity, entitlement) pairs."""
    wanted = {(o.identity_id, o.entitlement_id) for o in ops if o.entitlement_id is not None}
    if not wanted:
        return False
    found = session.execute(select(DriftItem.identity_id, DriftItem.entitlement_id).where(
        DriftItem.run_id == run.id, DriftItem.kind == "unassigned_membership",
        DriftItem.identity_id.in_({i for i, _e in wanted}),
        DriftItem.entitlement_id.in_({e for _i, e in wanted})))
    return any((i, e) in wanted for i, e in found)


def judge(session: Session, item: ReviewItem, *, at: datetime | None = None) -> Verdict:
    """What the operations and the reconciliation runs say about one revoked item (``at``:
    now, for a composition link's end)."""
    evidence: dict[str, Any] = {}
    if item.assignment_id is None:
        link = link_of(session, item)
        evidence["link_id"] = str(link.id)
        if at is None or not ended(link, at):
            return Verdict("requested", {**evidence, "note": "the link's end is not in force"})
    ops = revoke_operations(session, item)
    evidence["operations"] = [str(o.id) for o in ops]
    if not ops:
        return Verdict("confirmed", {**evidence, "note": "no revoke operation was needed"})
    broken = [o for o in ops if o.state in BROKEN]
    if broken:
        return Verdict("failed", {**evidence, "reason": "a revoke operation "
                                  f"{broken[0].state}: {broken[0].last_error or '-'}"})
    if any(o.state != "succeeded" for o in ops):
        return Verdict("requested", evidence)
    by_app: dict[uuid.UUID, list[ProvisioningOperation]] = defaultdict(list)
    for op in ops:
        by_app[op.application_id].append(op)
    runs: list[str] = []
    for application_id, app_ops in sorted(by_app.items(), key=lambda kv: str(kv[0])):
        application = session.get(Application, application_id)
        if application is not None and application.connector_kind in UNREADABLE_KINDS:
            runs.append("fulfilment")
            continue
        done = max(o.completed_at or o.updated_at for o in app_ops)
        run = _latest_run_after(session, application_id, done)
        if run is None:
            return Verdict("requested", evidence)
        runs.append(str(run.id))
        if _still_there(session, run, app_ops):
            return Verdict("failed", {**evidence, "runs": runs,
                                      "reason": "reconciliation still finds the access on "
                                                "the target"})
    return Verdict("confirmed", {**evidence, "runs": runs})


def _subject(item: ReviewItem) -> dict[str, str]:
    """The item's subject for the audit context: its assignment or its link."""
    if item.assignment_id is not None:
        return {"assignment_id": str(item.assignment_id)}
    return {"link_id": str(item.role_entitlement_id or item.role_inclusion_id)}


def _candidate_ids(session: Session, campaign_id: uuid.UUID | None) -> Sequence[uuid.UUID]:
    stmt = select(ReviewItem.id).where(ReviewItem.remediation.in_(("requested", "failed")))
    if campaign_id is not None:
        stmt = stmt.where(ReviewItem.campaign_id == campaign_id)
    return list(session.scalars(stmt.order_by(ReviewItem.id)))


def verify_remediation(session: Session, *, clock: Clock, actor: Actor,
                       campaign_id: uuid.UUID | None = None) -> int:
    """Check every ``requested`` or ``failed`` item (of one campaign, or all) against its
    operations and the reconciliation runs (see the module doc); return how many changed
    state. Each change is audited (``review_item.remediate``)."""
    ids = _candidate_ids(session, campaign_id)
    changed = 0
    for start in range(0, len(ids), CHUNK):
        events: list[EventSpec] = []
        items = session.scalars(select(ReviewItem).where(
            ReviewItem.id.in_(ids[start:start + CHUNK])))
        for item in items:
            verdict = judge(session, item, at=clock.now())
            if verdict.state == item.remediation:
                continue
            before = {"remediation": item.remediation, "remediated_at": item.remediated_at}
            item.remediation = verdict.state
            item.remediated_at = clock.now()
            item.context = {**(item.context or {}), "remediation": verdict.evidence}
            events.append(EventSpec(
                action="review_item.remediate", object_type="review_item", object_id=item.id,
                before=before,
                after={"remediation": item.remediation, "remediated_at": item.remediated_at},
                context={"campaign_id": str(item.campaign_id), **_subject(item),
                         **verdict.evidence}))
        session.flush()
        changed += record_many(session, events, actor=actor, clock=clock)
    return changed
