"""Running an HR feed: read, compare, hold or apply, and keep the record of the run.

:func:`run_feed` is what every channel calls (the CLI and upload with a parsed CSV, the
JSON push, SCIM with one record). It loads the current state, asks the pure planner
(:mod:`idgov.lifecycle.planner`) what the records mean, writes the run and its changes, and
applies them unless a safety threshold holds the run for an administrator
(:func:`confirm_run` / :func:`reject_run`). Joiners are written in bulk
(:mod:`idgov.lifecycle.joiners`), other changes one identity at a time through the usual
services (:mod:`idgov.lifecycle.changes`). Flushes, never commits.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import date, time
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from idgov.audit.canonical import to_jsonable
from idgov.audit.service import record, snapshot
from idgov.birthright import service as birthright
from idgov.clock import Clock
from idgov.db.repository import bulk_insert
from idgov.errors import Conflict, InvalidInput, NotFound
from idgov.lifecycle import planner, repository
from idgov.lifecycle.changes import apply_change
from idgov.lifecycle.joiners import JoinerContext, JoinerWriter
from idgov.lifecycle.records import ParsedFeed
from idgov.models.hr import FeedChange, FeedRun, HrSource
from idgov.types import Actor

Progress = Callable[[int, int], None]
SCIM_SOURCE = "scim"


def scim_source(session: Session) -> HrSource:
    """The source SCIM clients write through (created on first use)."""
    source = session.scalars(select(HrSource).where(HrSource.name == SCIM_SOURCE)).one_or_none()
    if source is None:
        source = HrSource(name=SCIM_SOURCE, kind="scim", default_mode="delta",
                          description="Users and groups written by SCIM clients",
                          column_mapping={}, location_time_zones={})
        session.add(source)
        session.flush()
    return source


def _columns(source: HrSource) -> dict[str, str]:
    return {k: str(v) for k, v in (source.column_mapping or {}).items()}


def _current(session: Session, parsed: ParsedFeed, mode: str) -> dict[str, planner.Current]:
    with_groups = any("groups" in r.values for r in parsed.records)
    if mode == "snapshot":
        return repository.load_all(session, with_groups=with_groups)
    named = {r.employee_id for r in parsed.records}
    named |= {str(r.values[key]) for r in parsed.records
              for key in ("manager_employee_id", "previous_employee_id") if r.values.get(key)}
    return repository.load_named(session, named, with_groups=with_groups)


def run_feed(session: Session, *, source: HrSource, parsed: ParsedFeed, mode: str,
             channel: str, actor: Actor, clock: Clock, file_name: str | None = None,
             file_sha256: str | None = None, progress: Progress | None = None) -> FeedRun:
    """Compare ``parsed`` with the identities and apply what changed (or hold the run).

    Conflict when the source already has a run waiting for an administrator, or is
    disabled; InvalidInput for an unknown mode.
    """
    if mode not in ("snapshot", "delta"):
        raise InvalidInput(f"unknown mode {mode!r}: snapshot or delta")
    if not source.enabled:
        raise Conflict(f"HR source {source.name} is disabled")
    held = repository.held_run(session, source.id)
    if held is not None:
        raise Conflict(f"run {held.id} of {source.name} waits for an administrator: confirm "
                       "or reject it first", run_id=str(held.id))
    now = clock.now()
    run = FeedRun(id=uuid.uuid4(), source_id=source.id, mode=mode, channel=channel,
                  file_name=file_name, file_sha256=file_sha256, state="running",
                  started_at=now, started_by=actor.label, counts={}, errors=[])
    session.add(run)
    session.flush()
    current = _current(session, parsed, mode)
    owners = repository.unique_owners(
        session, emails=[str(r.values.get("email") or "") for r in parsed.records],
        user_names=[str(r.values.get("user_name") or "") for r in parsed.records])
    # Holders of the emails and user names the records give must be known to the planner.
    holders = {e for held_by in owners.values() for e in held_by.values()} - current.keys()
    if holders:
        current.update(repository.load_named(session, holders, with_groups=False))
    rules = planner.Rules(mode=mode, source_id=source.id,
                          termination_threshold_percent=source.termination_threshold_percent,
                          change_threshold=source.change_threshold,
                          all_or_nothing=source.all_or_nothing)
    result = planner.plan(parsed.records, current=current, rules=rules,
                          columns=_columns(source), prior_errors=parsed.errors,
                          rows=parsed.rows or None)
    del current
    run.counts = result.counts
    run.errors = [e.as_dict() for e in result.errors]
    if result.reject_all:
        run.state = "rejected"
        run.hold_reason = "the source is all-or-nothing and rows were rejected"
        return _finish(session, run, actor=actor, clock=clock)
    change_ids = _store_changes(session, run, result.changes, state="planned")
    if result.hold_reason is not None:
        run.state = "held"
        run.hold_reason = result.hold_reason
        return _finish(session, run, actor=actor, clock=clock)
    _apply(session, run, source=source, changes=result.changes, change_ids=change_ids,
           actor=actor, clock=clock, progress=progress)
    run.state = "applied"
    return _finish(session, run, actor=actor, clock=clock)


_NOT_AUDITED = frozenset({"errors"})  # row errors quote the file: they stay with the run


def _finish(session: Session, run: FeedRun, *, actor: Actor, clock: Clock,
            before: dict[str, Any] | None = None) -> FeedRun:
    """Stamp the end of the run and audit it (``before``: the held run a decision ends)."""
    run.finished_at = clock.now() if run.state != "held" else None
    session.flush()
    record(session, actor=actor, action=f"hr_feed.{run.state}", object_type="hr_feed_run",
           object_id=run.id, clock=clock, before=before,
           after=snapshot(run, exclude=_NOT_AUDITED),
           context={"rejected_rows": len(run.errors)})
    return run


_STORE_CHUNK = 5000


def _store_changes(session: Session, run: FeedRun, changes: list[planner.PlannedChange], *,
                   state: str) -> dict[int, uuid.UUID]:
    ids: dict[int, uuid.UUID] = {}
    rows: list[dict[str, Any]] = []
    for change in changes:
        ids[change.seq] = change_id = uuid.uuid4()
        after = to_jsonable(change.after)
        if change.note:
            after["_note"] = change.note
        if change.immediate:
            after["_immediate"] = True
        rows.append({"id": change_id, "run_id": run.id, "seq": change.seq,
                     "row_number": change.row, "employee_id": change.employee_id,
                     "identity_id": change.identity_id, "kind": change.kind,
                     "changed": list(change.changed),
                     "before": to_jsonable(change.before) if change.before else None,
                     "after": after, "effective_at": None, "state": state,
                     "applied_at": None})
        if len(rows) == _STORE_CHUNK:  # written as they come: a first load is 100k rows
            bulk_insert(session, FeedChange, rows)
            rows = []
    if rows:
        bulk_insert(session, FeedChange, rows)
    return ids


def _apply(session: Session, run: FeedRun, *, source: HrSource,
           changes: list[planner.PlannedChange], change_ids: dict[int, uuid.UUID],
           actor: Actor, clock: Clock, progress: Progress | None) -> None:
    rules = birthright.load_rules(session)
    ctx = JoinerContext(source=source, run_id=run.id, rules=rules, ids={}, groups={},
                        change_ids=change_ids, actor=actor, clock=clock)
    ctx.groups = repository.group_ids_by_name(
        session, {g for c in changes for g in c.after.get("groups") or ()})
    joiners = [c for c in changes if c.kind == "joiner"]
    others = [c for c in changes if c.kind != "joiner"]
    # Managers already known, of joiners and of the others alike (a joiner's manager is
    # often someone who is not in the file, e.g. in a delta).
    named = {c.after.get("manager_employee_id") for c in changes} - {None}
    ctx.ids.update({e: cur.identity_id for e, cur in repository.load_named(
        session, {str(n) for n in named}, with_groups=False).items()})
    total, done = len(changes), 0

    def step(n: int) -> None:
        nonlocal done
        done += n
        if progress is not None:
            progress(done, total)

    if joiners:
        JoinerWriter(session, ctx).write(joiners, progress=step)
        for change in joiners:
            change.identity_id = ctx.ids[change.employee_id]
    for change in others:
        apply_change(session, change, change_id=change_ids[change.seq], ctx=ctx, rules=rules)
        step(1)
    now = clock.now()
    session.execute(update(FeedChange).where(FeedChange.run_id == run.id)
                    .values(state="applied", applied_at=now))
    _link_joiners(session, joiners, change_ids, ctx)


def _link_joiners(session: Session, joiners: list[planner.PlannedChange],
                  change_ids: dict[int, uuid.UUID], ctx: JoinerContext) -> None:
    rows = [{"id": change_ids[c.seq], "identity_id": ctx.ids[c.employee_id]} for c in joiners]
    for start in range(0, len(rows), 5000):
        session.execute(update(FeedChange), rows[start:start + 5000])


_DATE_FIELDS = ("hire_date", "termination_date")


def _from_json(values: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in values.items() if not k.startswith("_")}
    for name in _DATE_FIELDS:
        if isinstance(out.get(name), str):
            out[name] = date.fromisoformat(out[name])
    if isinstance(out.get("termination_time"), str):
        out["termination_time"] = time.fromisoformat(out["termination_time"])
    return out


def confirm_run(session: Session, *, run_id: uuid.UUID, note: str | None, actor: Actor,
                clock: Clock, progress: Progress | None = None) -> FeedRun:
    """Apply a held run's planned changes, as the administrator saw them."""
    run = _held(session, run_id)
    before = snapshot(run, exclude=_NOT_AUDITED)
    source = session.get(HrSource, run.source_id)
    assert source is not None
    stored = list(repository.changes_of(session, run.id, state="planned"))
    changes = [planner.PlannedChange(
        seq=c.seq, row=c.row_number, employee_id=c.employee_id, identity_id=c.identity_id,
        kind=c.kind, changed=tuple(c.changed), before=_from_json(c.before or {}),
        after=_from_json(c.after or {}), immediate=bool((c.after or {}).get("_immediate")),
        note=(c.after or {}).get("_note")) for c in stored]
    run.decided_by, run.decided_at, run.decision_note = actor.label, clock.now(), note
    _apply(session, run, source=source, changes=changes,
           change_ids={c.seq: c.id for c in stored}, actor=actor, clock=clock,
           progress=progress)
    run.state = "applied"
    return _finish(session, run, actor=actor, clock=clock, before=before)


def reject_run(session: Session, *, run_id: uuid.UUID, note: str | None, actor: Actor,
               clock: Clock) -> FeedRun:
    """Refuse a held run: nothing of it applies."""
    run = _held(session, run_id)
    before = snapshot(run, exclude=_NOT_AUDITED)
    run.decided_by, run.decided_at, run.decision_note = actor.label, clock.now(), note
    session.execute(update(FeedChange).where(FeedChange.run_id == run.id)
                    .values(state="discarded"))
    run.state = "rejected"
    return _finish(session, run, actor=actor, clock=clock, before=before)


def _held(session: Session, run_id: uuid.UUID) -> FeedRun:
    run = session.get(FeedRun, run_id, with_for_update=True)
    if run is None:
        raise NotFound(f"feed run {run_id} does not exist")
    if run.state != "held":
        raise Conflict(f"feed run {run_id} is {run.state}, not held", state=run.state)
    return run
