"""The JSON push: a batch of worker records, or of events, turned into worker records.

A push holds either ``records`` (a snapshot or a delta of whole workers; a record marked
``"partial": true`` names only what changes) or ``events`` (hire, update, terminate, rehire,
convert: always a delta, each a partial record). Keys are the canonical field names or the
source's mapped keys; ``attributes`` may be an object of extra attributes. Values are checked
exactly as CSV cells are (:mod:`idgov.lifecycle.coercion`); a bad record or event is reported
with its 1-based position as ``row`` and its JSON path as ``column`` and left out.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import Field, model_validator

from idgov.lifecycle.coercion import (
    ATTRIBUTE_PREFIX,
    MAPPABLE,
    check_mapping,
    coerce_values,
    duplicate_errors,
    is_mappable,
    iso_date,
)
from idgov.lifecycle.records import REQUIRED, ParsedFeed, RowError, WorkerRecord
from idgov.web.schemas import StrictIn

MAX_BATCH = 100_000
EventType = Literal["hire", "update", "terminate", "rehire", "convert"]


class PushEvent(StrictIn):
    """Something that happened to one worker, effective on a date."""

    type: EventType
    employee_id: str | int = Field(description="The worker's HR key")
    effective_date: str = Field(description="YYYY-MM-DD: the hire, rehire or termination "
                                "date; for update and convert, when the change happened")
    effective_time: str | None = Field(default=None, description="HH:MM local time a "
                                       "termination takes effect (default: end of the day)")
    immediate: bool | None = Field(default=None, description="A termination with immediate "
                                   "effect (for cause)")
    worker: dict[str, Any] | None = Field(default=None, description="Fields of the worker "
                                          "(canonical or mapped keys) that the event sets")


class PushBody(StrictIn):
    """A push from an HR system: ``{"mode", "records"}`` or ``{"events"}``."""

    mode: Literal["snapshot", "delta"] | None = Field(
        default=None, description="For records: a full snapshot (whoever is missing has left) "
        "or a delta; default: the source's mode. Events are always a delta.")
    records: list[dict[str, Any]] | None = Field(default=None, max_length=MAX_BATCH)
    events: list[PushEvent] | None = Field(default=None, max_length=MAX_BATCH)

    @model_validator(mode="after")
    def _one_kind(self) -> PushBody:
        if (self.records is None) == (self.events is None):
            raise ValueError("give either records or events")
        if self.events is not None and self.mode == "snapshot":
            raise ValueError("events are always a delta: a snapshot is sent as records")
        return self


class _Keys:
    """How a source names fields in JSON: its mapped key, else the canonical name."""

    def __init__(self, mapping: Mapping[str, str]) -> None:
        self.field_of = {key: field for field, key in mapping.items()}

    def resolve(self, obj: Mapping[str, Any], path: str, row: int
                ) -> tuple[dict[str, Any], dict[str, str], list[RowError]]:
        """Raw values by canonical field, the JSON path of each, and clashes."""
        raw: dict[str, Any] = {}
        where: dict[str, str] = {}
        errors: list[RowError] = []

        def put(field: str, value: Any, at: str) -> None:
            if field in raw:
                errors.append(RowError(row, at, f"{field} is also given as {where[field]}"))
                return
            raw[field] = value
            where[field] = at

        for key, value in obj.items():
            at = f"{path}.{key}"
            field = self.field_of.get(key)
            if field is None and key == "attributes" and "attributes" not in self.field_of:
                if value is None:
                    continue
                if not isinstance(value, dict):
                    errors.append(RowError(row, at, "must be an object of attributes"))
                    continue
                for name, item in value.items():
                    attribute = ATTRIBUTE_PREFIX + str(name)
                    if not is_mappable(attribute):
                        errors.append(RowError(row, f"{at}.{name}", "not a valid attribute "
                                               "name"))
                    else:
                        put(attribute, item, f"{at}.{name}")
                continue
            if field is None and (key in MAPPABLE or (key.startswith(ATTRIBUTE_PREFIX)
                                                      and is_mappable(key))):
                field = key
            if field is not None:
                put(field, value, at)
            # Anything else is ignored, as CSV columns the mapping does not name are.
        return raw, where, errors


def _finish(row: int, raw: dict[str, Any], where: dict[str, str], path: str,
            errors: list[RowError], required: tuple[str, ...]
            ) -> tuple[dict[str, Any] | None, list[RowError]]:
    def column_of(field: str) -> str:
        return where.get(field, f"{path}.{field}")

    values, problems = coerce_values(raw, row=row, column_of=column_of, required=required)
    employee_id = values.get("employee_id")
    problems = [RowError(e.row, e.column, e.message, employee_id) for e in errors] + problems
    return (None if problems else values), problems


def _record(keys: _Keys, obj: dict[str, Any], index: int
            ) -> tuple[WorkerRecord | None, list[RowError], Any]:
    row, path = index + 1, f"records[{index}]"
    flag = obj.get("partial", False)
    raw, where, errors = keys.resolve({k: v for k, v in obj.items() if k != "partial"},
                                      path, row)
    if not isinstance(flag, bool):
        errors.append(RowError(row, f"{path}.partial", "must be true or false"))
    partial = flag is True
    values, problems = _finish(row, raw, where, path, errors,
                               ("employee_id",) if partial else REQUIRED)
    record = None if values is None else WorkerRecord(row=row, values=values, partial=partial)
    return record, problems, raw.get("employee_id")


_EVENT_DATE = {"terminate": "termination_date", "hire": "hire_date", "rehire": "hire_date"}


def _event(keys: _Keys, event: PushEvent, index: int
           ) -> tuple[WorkerRecord | None, list[RowError], Any]:
    row, path = index + 1, f"events[{index}]"
    raw, where, errors = keys.resolve(event.worker or {}, f"{path}.worker", row)
    if "employee_id" in raw and str(raw["employee_id"]).strip() != str(event.employee_id):
        errors.append(RowError(row, where["employee_id"], "differs from the event's "
                               "employee_id"))

    def put(field: str, value: Any, key: str) -> None:
        raw[field], where[field] = value, f"{path}.{key}"

    put("employee_id", event.employee_id, "employee_id")
    required: tuple[str, ...] = ("employee_id",)
    date_field = _EVENT_DATE.get(event.type)
    if date_field is not None:
        # The event's date is the hire or termination date, checked as that field.
        put(date_field, event.effective_date, "effective_date")
        required += (date_field,)
    else:
        try:
            if iso_date(event.effective_date) is None:
                errors.append(RowError(row, f"{path}.effective_date",
                                       "effective date is required"))
        except ValueError as exc:
            errors.append(RowError(row, f"{path}.effective_date", str(exc)))
    if event.type == "terminate":
        put("termination_time", event.effective_time, "effective_time")
        put("termination_immediate", bool(event.immediate), "immediate")
    else:
        if event.effective_time is not None or event.immediate:
            key = "effective_time" if event.effective_time is not None else "immediate"
            errors.append(RowError(row, f"{path}.{key}", "only a termination takes a time "
                                   "or immediate effect"))
        if event.type in ("hire", "rehire"):
            for cleared in ("termination_date", "termination_time", "termination_immediate"):
                raw.setdefault(cleared, None)
        if event.type == "hire":
            required = (*REQUIRED, "hire_date")
        if event.type == "convert" and raw.get("employment_type") in (None, ""):
            errors.append(RowError(row, f"{path}.worker.employment_type",
                                   "a conversion names the new employment type"))
    values, problems = _finish(row, raw, where, path, errors, required)
    record = None if values is None else WorkerRecord(row=row, values=values, partial=True)
    return record, problems, raw.get("employee_id")


def parse_push(body: PushBody, *, mapping: Mapping[str, str], default_mode: str = "delta"
               ) -> tuple[ParsedFeed, str]:
    """The worker records of a push and its mode (``snapshot`` or ``delta``).

    Records are whole workers (given and family names required) unless marked
    ``"partial": true``; events become partial records: terminate sets the termination
    date, time and immediacy; hire and rehire the hire date (clearing any termination) and
    the worker's fields; convert and update the worker's fields (convert must name the
    employment type). An employee id given by more than one entry rejects all of them.
    ``default_mode`` (the source's) applies to records pushed without a mode.
    """
    keys = _Keys(check_mapping(mapping))
    feed = ParsedFeed()
    by_id: dict[str, list[int]] = {}
    if body.records is not None:
        mode, what = body.mode or default_mode, "records"
        results = [_record(keys, obj, i) for i, obj in enumerate(body.records)]
    else:
        mode, what = "delta", "events"
        results = [_event(keys, event, i) for i, event in enumerate(body.events or [])]
    for index, (record, problems, employee_id) in enumerate(results):
        feed.rows += 1
        feed.errors.extend(problems)
        if record is not None:
            feed.records.append(record)
        if isinstance(employee_id, str | int) and not isinstance(employee_id, bool):
            key = str(employee_id).strip()
            if key:
                by_id.setdefault(key, []).append(index + 1)
    duplicated, errors = duplicate_errors(
        by_id, column_of_row=lambda row: f"{what}[{row - 1}].employee_id", what="entry")
    if duplicated:
        feed.records = [r for r in feed.records if r.employee_id not in duplicated]
        feed.errors.extend(errors)
        feed.errors.sort(key=lambda e: e.row)
    return feed, mode
