"""Joiners in bulk: identities, organisational groups, birthright assignments, their
provisioning operations and lifecycle events, written through the driver.

A first HR snapshot brings a whole population at once; creating it one ORM object and one
flush at a time would take many minutes. This module writes the same rows the one-by-one
services would (an identity as ``idgov.identities`` creates it, a birthright assignment as
``idgov.assignments.service.grant`` does, operations as ``idgov.provisioning`` records them,
audited), in chunks, managers before their reports. The rows go through
:class:`idgov.db.rawwrite.RowWriter` (COPY on PostgreSQL, executemany on SQLite) on a
:class:`~idgov.db.rawwrite.Pipeline`: the database stores one chunk while the next is
prepared. Audit: ``identity.create``, ``group.member_add``, ``assignment.grant`` and
``lifecycle.schedule`` one event per row; the operations one ``provisioning.record`` event
per joiner (see :meth:`idgov.provisioning.bulk.JoinerRecorder.record`).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from idgov.audit.service import EventSpec, record_many
from idgov.catalog.snapshot import current_snapshot
from idgov.clock import Clock
from idgov.db.rawwrite import Pipeline, RowWriter
from idgov.db.repository import bulk_insert
from idgov.lifecycle import timing
from idgov.lifecycle.planner import PlannedChange
from idgov.lifecycle.records import IDENTITY_COLUMNS, normalise_time
from idgov.models.assignment import Assignment
from idgov.models.hr import HrSource, LifecycleEvent
from idgov.models.identity import Group, GroupMember, Identity
from idgov.policy.birthright import RuleSpec, evaluate
from idgov.provisioning.bulk import JoinerAccess, JoinerRecorder, NewGrant, load_applications
from idgov.types import Actor

# Joiners written per round. Each joiner brings some 35 rows (assignments, operations,
# audit events) held with their bound parameters until the round is written: 500 keeps
# a 100,000-worker first load well under 500 MB, at the same speed as larger rounds.
CHUNK = 500


@dataclass
class JoinerContext:
    """What every chunk needs: the source, rules, ids of everyone by employee id."""

    source: HrSource
    run_id: uuid.UUID
    rules: Sequence[RuleSpec]
    ids: dict[str, uuid.UUID]
    groups: dict[str, uuid.UUID]
    change_ids: dict[int, uuid.UUID]
    actor: Actor
    clock: Clock
    errors: list[dict[str, Any]] = field(default_factory=list)


def zone_for(source: HrSource, values: Mapping[str, Any]) -> Any:
    return timing.zone_of(time_zone=values.get("time_zone"), location=values.get("location"),
                          location_time_zones=source.location_time_zones or {},
                          default=source.default_time_zone)


def _ordered(changes: Sequence[PlannedChange]) -> list[PlannedChange]:
    """Managers before their reports (cycles were rejected by the planner)."""
    by_id = {c.employee_id: c for c in changes}
    done: set[str] = set()
    ordered: list[PlannedChange] = []
    for change in changes:
        stack = []
        node: PlannedChange | None = change
        while node is not None and node.employee_id not in done:
            stack.append(node)
            done.add(node.employee_id)
            manager = node.after.get("manager_employee_id")
            node = by_id.get(manager) if manager else None
        ordered.extend(reversed(stack))
    return ordered


def _identity_row(change: PlannedChange, ctx: JoinerContext, now: datetime,
                  hire_start: datetime | None) -> dict[str, Any]:
    values = change.after
    row: dict[str, Any] = {c: values.get(c) for c in IDENTITY_COLUMNS}
    row["display_name"] = row["display_name"] or f"{values['given_name']} " \
                                                 f"{values['family_name']}"
    row["employment_type"] = row["employment_type"] or "employee"
    manager = values.get("manager_employee_id")
    row.update(id=ctx.ids[change.employee_id], employee_id=change.employee_id,
               manager_id=ctx.ids.get(manager) if manager else None,
               lifecycle_state="prehire" if hire_start and hire_start > now else "active",
               attributes=dict(values.get("attributes") or {}), external_id=None,
               hr_source_id=ctx.source.id, created_at=now, updated_at=now)
    return row


def ensure_groups(session: Session, names: set[str], ctx: JoinerContext) -> None:
    """Create the organisational groups named by the records that do not exist yet."""
    missing = sorted(n for n in names if n not in ctx.groups)
    if not missing:
        return
    now = ctx.clock.now()
    rows: list[dict[str, Any]] = [
        {"id": uuid.uuid4(), "name": name, "kind": "organisation", "description": None,
             "email": None, "owner_id": None, "external_id": None, "created_at": now,
             "updated_at": now} for name in missing]
    bulk_insert(session, Group, rows)
    record_many(session, (EventSpec(action="group.create", object_type="group",
                                    object_id=r["id"], after={"name": r["name"],
                                                              "kind": "organisation"},
                                    context={"hr_feed_run_id": str(ctx.run_id)})
                          for r in rows), actor=ctx.actor, clock=ctx.clock)
    ctx.groups.update({r["name"]: r["id"] for r in rows})


class JoinerWriter:
    """Writes joiners chunk by chunk."""

    def __init__(self, session: Session, ctx: JoinerContext) -> None:
        self.session = session
        self.ctx = ctx
        now = ctx.clock.now()
        self.recorder = JoinerRecorder(session, snapshot=current_snapshot(session, at=now),
                                       applications=load_applications(session),
                                       actor=ctx.actor, clock=ctx.clock)
        self._writers: dict[Any, RowWriter] = {}
        self.pipeline: Pipeline | None = None

    def _write(self, model: Any, rows: Sequence[dict[str, Any]]) -> None:
        """Insert ``rows`` (column dicts, all with the same keys) through the driver."""
        writer = self._writers.get(model)
        if writer is None:
            writer = self._writers[model] = RowWriter(self.session, model, list(rows[0]))
        writer.write_dicts(rows, pipeline=self.pipeline)

    def write(self, changes: Sequence[PlannedChange],
              progress: Callable[[int], None] | None = None) -> list[uuid.UUID]:
        """Create every joiner of ``changes``; returns their identity ids in order."""
        ordered = _ordered(changes)
        for change in ordered:
            self.ctx.ids.setdefault(change.employee_id, uuid.uuid4())
        ensure_groups(self.session, {g for c in ordered for g in c.after.get("groups") or ()},
                      self.ctx)
        # Each chunk's rows are stored on the pipeline's thread while the next is prepared.
        with Pipeline(self.session) as pipeline:
            self.pipeline = self.recorder.pipeline = pipeline
            try:
                for start in range(0, len(ordered), CHUNK):
                    chunk = ordered[start:start + CHUNK]
                    self._chunk(chunk)
                    if progress is not None:
                        progress(len(chunk))
            finally:
                self.pipeline = self.recorder.pipeline = None
        return [self.ctx.ids[c.employee_id] for c in ordered]

    def _chunk(self, chunk: Sequence[PlannedChange]) -> None:
        ctx = self.ctx
        now = ctx.clock.now()
        identities: list[dict[str, Any]] = []
        members: list[dict[str, Any]] = []
        assignments: list[dict[str, Any]] = []
        events: list[dict[str, Any]] = []
        access: list[JoinerAccess] = []
        for change in chunk:
            zone = zone_for(ctx.source, change.after)
            hire = change.after.get("hire_date")
            hire_start = timing.hire_instant(hire, zone) if hire else None
            row = _identity_row(change, ctx, now, hire_start)
            identities.append(row)
            identity_id = row["id"]
            members.extend({"group_id": ctx.groups[g], "identity_id": identity_id}
                           for g in change.after.get("groups") or () if g in ctx.groups)
            start = hire_start if hire_start and hire_start > now else now
            subject = {**change.after, "groups": list(change.after.get("groups") or ())}
            grants = []
            for rule in evaluate(ctx.rules, subject):
                assignment_id = uuid.uuid4()
                assignments.append({
                    "id": assignment_id, "identity_id": identity_id, "role_id": rule.role_id,
                    "entitlement_id": rule.entitlement_id, "source": "birthright",
                    "reason": f"birthright rule {rule.name}", "request_line_id": None,
                    "birthright_rule_id": rule.id, "granted_by": ctx.actor.label,
                    "valid_from": start, "valid_until": None, "revoked_at": None,
                    "revoked_by": None, "revoke_reason": None, "last_certified_at": None,
                    "last_certified_by": None, "created_at": now, "updated_at": now})
                grants.append(NewGrant(assignment_id, rule.role_id, rule.entitlement_id))
            change_id = ctx.change_ids[change.seq]
            if row["lifecycle_state"] == "prehire" and hire_start is not None:
                events.append(_event(identity_id, "activate", hire_start, change_id, ctx, now,
                                     "hire date reached"))
            termination = change.after.get("termination_date")
            if termination is not None:
                at = change.after.get("termination_time")
                due = now if change.immediate else timing.termination_instant(
                    termination, zone, at)
                events.append(_event(identity_id, "terminate", due, change_id, ctx, now,
                                     "termination date reached",
                                     {"termination_time": normalise_time(at)}))
            access.append(JoinerAccess(identity_id=identity_id, values=row, grants=grants,
                                       not_before=hire_start,
                                       day_one_cause_id=f"joiner:{change_id}"))
        self._write(Identity, identities)
        specs = [EventSpec(action="identity.create", object_type="identity",
                           object_id=row["id"],
                           after={k: v for k, v in row.items()
                                  if k not in ("created_at", "updated_at")},
                           context={"hr_feed_run_id": str(ctx.run_id)})
                 for row in identities]
        if members:
            self._write(GroupMember, members)
            specs.extend(EventSpec(action="group.member_add", object_type="group",
                                   object_id=m["group_id"],
                                   after={"identity_id": str(m["identity_id"])})
                         for m in members)
        if assignments:
            self._write(Assignment, assignments)
            specs.extend(EventSpec(action="assignment.grant", object_type="assignment",
                                   object_id=a["id"],
                                   after={k: v for k, v in a.items()
                                          if k not in ("created_at", "updated_at")})
                         for a in assignments)
        if events:
            self._write(LifecycleEvent, events)
            specs.extend(EventSpec(action="lifecycle.schedule", object_type="lifecycle_event",
                                   object_id=e["id"],
                                   after=e)
                         for e in events)
        record_many(self.session, specs, actor=ctx.actor, clock=ctx.clock,
                    pipeline=self.pipeline)
        self.recorder.record(access)


def _event(identity_id: uuid.UUID, kind: str, due: datetime, change_id: uuid.UUID,
           ctx: JoinerContext, now: datetime, reason: str,
           detail: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"id": uuid.uuid4(), "identity_id": identity_id, "kind": kind, "due_at": due,
            "state": "scheduled", "run_id": ctx.run_id, "change_id": change_id,
            "reason": reason, "detail": detail or {}, "created_at": now, "done_at": None}
