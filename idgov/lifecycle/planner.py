"""The joiner-mover-leaver diff: what a feed's records mean for the identities. Pure.

:func:`plan` compares every record with the identity it names (or none), checks what only
the whole file can tell (duplicate keys and unique values, managers that exist, manager
cycles), classifies each change, and decides whether the run must wait for an
administrator (safety thresholds). It does no I/O: :mod:`idgov.lifecycle.feed` loads the
current state and applies the plan.

Kinds: ``joiner`` (no identity with that employee id), ``rehire`` (a terminated identity
comes back), ``conversion`` (the employment type changes, e.g. contractor to employee),
``leaver`` (a termination date appears or changes, a for-cause termination, or, in a
snapshot, the person is missing), ``mover`` (department, location, job code, cost
center, manager or organisational groups change), ``update`` (anything else, e.g. a new
surname; a withdrawn termination). Termination time and the immediate flag are read only
when a termination happens: on their own they change nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from idgov.lifecycle.records import POSITION_FIELDS, REQUIRED, RowError, WorkerRecord

# Compared fields (what a record gives is compared with what the identity has).
_NOT_COMPARED = frozenset({"employee_id", "previous_employee_id", "termination_time",
                           "termination_immediate"})
_UNIQUE = ("email", "user_name")
ACTIVE_STATES = frozenset({"active", "prehire", "suspended"})


@dataclass(frozen=True)
class Current:
    """An identity as the planner sees it: canonical HR values (``manager_employee_id``,
    ``groups`` as sorted names, ``attributes``), its state and its source."""

    identity_id: uuid.UUID
    values: Mapping[str, Any]
    lifecycle_state: str
    source_id: uuid.UUID | None


@dataclass(frozen=True)
class Rules:
    """What the source asks of a run."""

    mode: str  # snapshot | delta
    source_id: uuid.UUID
    termination_threshold_percent: float = 5.0
    change_threshold: int | None = None
    all_or_nothing: bool = False


@dataclass
class PlannedChange:
    """One identity's change. ``after`` is the complete new value set (current values with
    the record's over them); ``note`` says why when the record alone does not."""

    seq: int
    row: int | None
    employee_id: str
    identity_id: uuid.UUID | None
    kind: str
    changed: tuple[str, ...]
    before: dict[str, Any] | None
    after: dict[str, Any]
    immediate: bool = False
    note: str | None = None


@dataclass
class Plan:
    changes: list[PlannedChange] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    hold_reason: str | None = None
    reject_all: bool = False


def _column(columns: Mapping[str, str], name: str) -> str:
    return columns.get(name, name)


def _normalised(values: Mapping[str, Any]) -> dict[str, Any]:
    """Fill the defaults an identity row would get, so a record that leaves them out does
    not differ from the identity every time."""
    out = dict(values)
    if "display_name" in out and not out["display_name"] and "given_name" in out:
        out["display_name"] = f"{out.get('given_name')} {out.get('family_name')}"
    if "employment_type" in out and not out["employment_type"]:
        out["employment_type"] = "employee"
    if "groups" in out:
        out["groups"] = sorted(set(out["groups"] or ()))
    return out


def _differs(name: str, old: Any, new: Any) -> bool:
    if name == "attributes":
        old_map, new_map = dict(old or {}), dict(new or {})
        return any((old_map.get(k) or None) != (v or None) for k, v in new_map.items())
    return (old if old != "" else None) != (new if new != "" else None)


def _merge_attributes(old: Mapping[str, Any] | None, new: Mapping[str, Any] | None
                      ) -> dict[str, Any]:
    merged = dict(old or {})
    for key, value in (new or {}).items():
        if value in (None, ""):
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged


class _Checker:
    """The checks across rows: duplicates, unique values, managers, cycles."""

    def __init__(self, records: Sequence[WorkerRecord], current: Mapping[str, Current],
                 columns: Mapping[str, str]) -> None:
        self.records = records
        self.current = current
        self.columns = columns
        self.errors: list[RowError] = []
        self.rejected: set[int] = set()  # record positions

    def reject(self, i: int, column: str, message: str) -> None:
        record = self.records[i]
        self.errors.append(RowError(record.row, _column(self.columns, column), message,
                                    record.values.get("employee_id")))
        self.rejected.add(i)

    def duplicates(self) -> None:
        seen: dict[str, list[int]] = {}
        for i, record in enumerate(self.records):
            seen.setdefault(record.employee_id, []).append(i)
        for employee_id, places in seen.items():
            if len(places) > 1:
                rows = ", ".join(str(self.records[p].row) for p in places)
                for p in places:
                    self.reject(p, "employee_id",
                                f"employee id {employee_id} appears on rows {rows}")

    def unique_values(self, owners: Mapping[str, Mapping[str, str]]) -> None:
        """``owners[field][value.lower()]`` = the employee id holding it today."""
        for name in _UNIQUE:
            seen: dict[str, list[int]] = {}
            for i, record in enumerate(self.records):
                value = record.values.get(name)
                if value:
                    seen.setdefault(str(value).lower(), []).append(i)
            for value, places in seen.items():
                if len(places) > 1:
                    rows = ", ".join(str(self.records[p].row) for p in places)
                    for p in places:
                        self.reject(p, name, f"{name} {value} appears on rows {rows}")
                    continue
                holder = owners.get(name, {}).get(value)
                record = self.records[places[0]]
                if holder is not None and holder != record.employee_id \
                        and holder not in self._renaming(name, value):
                    self.reject(places[0], name, f"{name} {value} belongs to employee {holder}")

    def _renaming(self, name: str, value: str) -> set[str]:
        """Employee ids whose record gives up ``value`` in this same file."""
        return {r.employee_id for r in self.records
                if name in r.values and str(r.values[name] or "").lower() != value}

    def creatable(self) -> None:
        """A record naming nobody known must be able to create an identity."""
        for i, record in enumerate(self.records):
            if i in self.rejected or _known(record, self.current) is not None:
                continue
            missing = [f for f in REQUIRED if not record.values.get(f)]
            if missing:
                self.reject(i, missing[0],
                            f"no identity has employee id {record.employee_id}, and a new "
                            f"one needs {', '.join(missing)}")

    def managers(self) -> None:
        """Unknown managers (also: managers whose own row was rejected) and cycles,
        repeated until nothing more is rejected."""
        while True:
            before = len(self.rejected)
            accepted = {self.records[i].employee_id: i for i in range(len(self.records))
                        if i not in self.rejected}
            for i, record in enumerate(self.records):
                if i in self.rejected:
                    continue
                manager = record.values.get("manager_employee_id")
                if not manager or manager in accepted or manager in self.current:
                    continue
                rejected_rows = [self.records[j].row for j in range(len(self.records))
                                 if j in self.rejected
                                 and self.records[j].employee_id == manager]
                reason = (f"manager {manager} was rejected (row {rejected_rows[0]})"
                          if rejected_rows else f"unknown manager {manager}")
                self.reject(i, "manager_employee_id", reason)
            self._cycles(accepted)
            if len(self.rejected) == before:
                return

    def _manager_of(self, employee_id: str, accepted: Mapping[str, int]) -> str | None:
        if employee_id in accepted:
            record = self.records[accepted[employee_id]]
            if "manager_employee_id" in record.values:
                return record.values["manager_employee_id"] or None
        current = self.current.get(employee_id)
        return current.values.get("manager_employee_id") if current else None

    def _cycles(self, accepted: Mapping[str, int]) -> None:
        state: dict[str, int] = {}  # 1 on the path being walked, 2 done
        for start in accepted:
            if start in state:
                continue
            path: list[str] = []
            node: str | None = start
            while node is not None and node not in state:
                state[node] = 1
                path.append(node)
                node = self._manager_of(node, accepted)
            if node is not None and state.get(node) == 1:
                loop = path[path.index(node):]
                text = " -> ".join([*loop, loop[0]])
                for member in loop:
                    if member in accepted and accepted[member] not in self.rejected:
                        self.reject(accepted[member], "manager_employee_id",
                                    f"management cycle: {text}")
            for member in path:
                state[member] = 2


def _known(record: WorkerRecord, current: Mapping[str, Current]) -> Current | None:
    """The identity a record is about: by its employee id, else by the previous one it
    names (a new HR key for the same person)."""
    found = current.get(record.employee_id)
    if found is None and record.values.get("previous_employee_id"):
        found = current.get(str(record.values["previous_employee_id"]))
    return found


def _classify(record: WorkerRecord, current: Current | None
              ) -> tuple[str, tuple[str, ...], dict[str, Any]] | str:
    """(kind, changed fields, after) or "unchanged"."""
    given = _normalised(record.values)
    if current is None:
        after = _normalised({**given, "employment_type": given.get("employment_type")
                             or "employee"})
        after.setdefault("display_name", f"{after['given_name']} {after['family_name']}")
        return "joiner", tuple(sorted(k for k in given if k not in _NOT_COMPARED)), after
    before = dict(current.values)
    changed = tuple(sorted(k for k, v in given.items()
                           if k not in _NOT_COMPARED and _differs(k, before.get(k), v)))
    if before.get("employee_id") not in (None, record.employee_id):
        changed = tuple(sorted((*changed, "employee_id")))  # re-keyed by HR
    after = {**before, **given}
    if "attributes" in given:
        after["attributes"] = _merge_attributes(before.get("attributes"), given["attributes"])
    immediate = bool(given.get("termination_immediate"))
    if current.lifecycle_state == "terminated":
        terminated_still = after.get("termination_date") is not None and (
            "termination_date" not in changed and "hire_date" not in changed)
        if terminated_still and not changed:
            return "unchanged"
        if terminated_still:
            return "update", changed, after
        return "rehire", changed, after
    if immediate:
        return "leaver", changed or ("termination_immediate",), after
    if not changed:
        return "unchanged"
    if "termination_date" in changed and after.get("termination_date") is not None:
        return "leaver", changed, after
    if "employment_type" in changed:
        return "conversion", changed, after
    if any(f in changed for f in POSITION_FIELDS):
        return "mover", changed, after
    return "update", changed, after


def plan(records: Sequence[WorkerRecord], *, current: Mapping[str, Current], rules: Rules,
         columns: Mapping[str, str] = {}, prior_errors: Iterable[RowError] = (),
         rows: int | None = None) -> Plan:
    """The plan for ``records`` (already value-checked by their channel; ``prior_errors``
    are that channel's rejected rows) against ``current`` (by employee id)."""
    prior = list(prior_errors)
    checker = _Checker(records, current, columns)
    checker.duplicates()
    owners: dict[str, dict[str, str]] = {name: {} for name in _UNIQUE}
    for employee_id, cur in current.items():
        for name in _UNIQUE:
            value = cur.values.get(name)
            if value:
                owners[name][str(value).lower()] = employee_id
    checker.unique_values(owners)
    checker.creatable()
    checker.managers()
    result = Plan()
    counts = dict.fromkeys(("joiners", "movers", "leavers", "rehires", "conversions",
                            "updates", "unchanged"), 0)
    for i, record in enumerate(records):
        if i in checker.rejected:
            continue
        known = _known(record, current)
        outcome = _classify(record, known)
        if isinstance(outcome, str):
            counts["unchanged"] += 1
            continue
        kind, changed, after = outcome
        counts[kind + "s"] += 1
        result.changes.append(PlannedChange(
            seq=len(result.changes), row=record.row, employee_id=record.employee_id,
            identity_id=known.identity_id if known else None, kind=kind, changed=changed,
            before=dict(known.values) if known else None, after=after,
            immediate=bool(record.values.get("termination_immediate"))))
    population = [e for e, c in current.items()
                  if c.source_id == rules.source_id and c.lifecycle_state in ACTIVE_STATES]
    if rules.mode == "snapshot":
        named = {r.employee_id for r in records} | {e.employee_id for e in prior
                                                    if e.employee_id}
        named |= {str(r.values["previous_employee_id"]) for r in records
                  if r.values.get("previous_employee_id")}
        for employee_id in population:
            if employee_id in named:
                continue
            cur = current[employee_id]
            counts["leavers"] += 1
            result.changes.append(PlannedChange(
                seq=len(result.changes), row=None, employee_id=employee_id,
                identity_id=cur.identity_id, kind="leaver", changed=("termination_date",),
                before=dict(cur.values), after={**cur.values, "termination_date": None},
                immediate=True, note="missing from the snapshot"))
    result.errors = prior + checker.errors
    rejected_rows = {e.row for e in result.errors}
    counts["rejected"] = len(rejected_rows)
    counts["rows"] = rows if rows is not None else len(records) + len(
        {e.row for e in prior})
    result.counts = counts
    if result.errors and rules.all_or_nothing:
        result.reject_all = True
        return result
    result.hold_reason = _hold_reason(result, rules=rules, population=len(population))
    return result


def _hold_reason(result: Plan, *, rules: Rules, population: int) -> str | None:
    """Why the run must wait for an administrator (None: it may apply)."""
    if population == 0:
        return None  # the first load into an empty population is not held
    reasons = []
    if rules.mode == "snapshot":
        leavers = sum(1 for c in result.changes if c.kind == "leaver")
        share = 100.0 * leavers / population
        if share > rules.termination_threshold_percent:
            reasons.append(f"{leavers} of {population} active identities would leave "
                           f"({share:.1f}%, more than the "
                           f"{rules.termination_threshold_percent:g}% allowed)")
    if rules.change_threshold is not None and len(result.changes) > rules.change_threshold:
        reasons.append(f"{len(result.changes)} identities would change (more than "
                       f"{rules.change_threshold})")
    return "; ".join(reasons) or None
