"""Turning the raw values of an HR channel into canonical worker values, field by field.

CSV cells and JSON values go through the same checks here, so a date, a zone or an
employment type means the same thing whichever way HR sent it. Each converter takes a raw
value (never None: None and empty text mean "empty") and returns the canonical value or raises
``ValueError`` with a message meant for the person who fixes the feed. Pure.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from datetime import date, time
from functools import lru_cache
from typing import Any

from idgov.errors import FieldError, InvalidInput
from idgov.lifecycle.records import FIELDS, REQUIRED, RowError
from idgov.lifecycle.timing import valid_zone

EMPLOYMENT_TYPES: tuple[str, ...] = ("employee", "contractor", "intern", "temporary", "vendor")
ATTRIBUTE_PREFIX = "attributes."
# Every key a mapping or a record may name: the canonical fields (``attributes`` itself is
# named per attribute, as ``attributes.<name>``).
MAPPABLE: frozenset[str] = frozenset(f for f in FIELDS if f != "attributes")
_ATTRIBUTE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,99}$")
_ATTRIBUTE_MAX = 2000
# Lengths of the identity columns the values end up in (manager_employee_id names an
# employee_id; groups are group names).
_TEXT_LIMITS: dict[str, int] = {
    "employee_id": 64, "previous_employee_id": 64, "given_name": 200, "family_name": 200,
    "display_name": 400,
    "user_name": 256, "manager_employee_id": 64, "department": 200, "location": 200,
    "job_code": 64, "job_title": 200, "cost_center": 64,
}
_GROUP_MAX = 200
_TRUE = frozenset({"yes", "true", "1", "y"})
_FALSE = frozenset({"no", "false", "0", "n"})
_TIME = re.compile(r"^\d{2}:\d{2}(:\d{2})?$")
# Loosely: one @, something before it, a domain of dot-separated labels after it.
_EMAIL = re.compile(r"[^@\s]+@[^@\s.]+(?:\.[^@\s.]+)+")

Converter = Callable[[Any], Any]


class FeedFormatError(InvalidInput):
    """A feed that cannot be read at all (a missing or duplicate column, text that is not
    UTF-8, a mapping naming an unknown field): nothing of it is used."""

    title = "Unreadable HR feed"


def _as_text(raw: Any) -> str:
    if isinstance(raw, str):
        return raw.strip()
    if isinstance(raw, int) and not isinstance(raw, bool):
        return str(raw)
    raise ValueError("must be text")


def _text(limit: int) -> Converter:
    def convert(raw: Any) -> str | None:
        text = _as_text(raw)
        if len(text) > limit:
            raise ValueError(f"is longer than {limit} characters")
        return text or None

    return convert


def _email(raw: Any) -> str | None:
    text = raw.strip() if raw.__class__ is str else _as_text(raw)
    if not text:
        return None
    if len(text) > 320 or not _EMAIL.fullmatch(text):
        raise ValueError(f"{text!r} is not an email address")
    return text


def iso_date(raw: Any) -> date | None:
    """A date written YYYY-MM-DD (no other form: 01/02/2026 means different days in
    different countries)."""
    text = raw.strip() if raw.__class__ is str else _as_text(raw)
    if not text:
        return None
    if len(text) != 10 or text[4] != "-" or text[7] != "-" or not text[:4].isdigit():
        raise ValueError(f"{text!r} is not a date in the form YYYY-MM-DD")
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a valid date") from None


def clock_time(raw: Any) -> time | None:
    """A local time of day written HH:MM or HH:MM:SS."""
    text = raw.strip() if raw.__class__ is str else _as_text(raw)
    if not text:
        return None
    if not _TIME.match(text):
        raise ValueError(f"{text!r} is not a time in the form HH:MM or HH:MM:SS")
    try:
        return time.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a valid time of day") from None


def _flag(raw: Any) -> bool | None:
    if isinstance(raw, bool):
        return raw
    text = _as_text(raw).lower()
    if not text:
        return None
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"{text!r} is not one of yes, no, true, false, 1, 0")


def _employment_type(raw: Any) -> str | None:
    text = _as_text(raw).lower()
    if not text:
        return None
    if text not in EMPLOYMENT_TYPES:
        raise ValueError(f"{text!r} is not one of {', '.join(EMPLOYMENT_TYPES)}")
    return text


@lru_cache(maxsize=1024)
def _known_zone(name: str) -> bool:
    return valid_zone(name)


def _time_zone(raw: Any) -> str | None:
    text = raw.strip() if raw.__class__ is str else _as_text(raw)
    if not text:
        return None
    if len(text) > 64 or not _known_zone(text):
        raise ValueError(f"{text!r} is not an IANA time zone (such as Europe/Paris)")
    return text


def _groups(raw: Any) -> list[str]:
    """Organisational group names: a list, or text separated by ";". Empty means none."""
    if isinstance(raw, list | tuple):
        names = [_as_text(item) for item in raw]
    else:
        names = _as_text(raw).split(";")
    out: list[str] = []
    for name in names:
        name = name.strip()
        if len(name) > _GROUP_MAX:
            raise ValueError(f"group name {name[:40]!r}... is longer than {_GROUP_MAX} characters")
        if name and name not in out:
            out.append(name)
    return out


def _attribute(raw: Any) -> str | None:
    if isinstance(raw, bool):
        return "true" if raw else "false"
    if isinstance(raw, float):
        raw = str(raw)
    text = _as_text(raw)
    if len(text) > _ATTRIBUTE_MAX:
        raise ValueError(f"is longer than {_ATTRIBUTE_MAX} characters")
    return text or None


CONVERTERS: dict[str, Converter] = {
    **{name: _text(limit) for name, limit in _TEXT_LIMITS.items()},
    "email": _email,
    "time_zone": _time_zone,
    "employment_type": _employment_type,
    "hire_date": iso_date,
    "termination_date": iso_date,
    "termination_time": clock_time,
    "termination_immediate": _flag,
    "groups": _groups,
}
assert set(CONVERTERS) == MAPPABLE


def is_mappable(key: str) -> bool:
    """Whether ``key`` names a canonical field or an extra attribute (``attributes.<name>``)."""
    if key.startswith(ATTRIBUTE_PREFIX):
        return bool(_ATTRIBUTE_NAME.match(key[len(ATTRIBUTE_PREFIX):]))
    return key in MAPPABLE


def mapping_errors(mapping: Mapping[str, Any], *, prefix: str = "column_mapping"
                   ) -> list[FieldError]:
    """What is wrong with a column mapping (canonical field -> the source's column or key):
    unknown fields, empty names, one column read as two fields."""
    errors: list[FieldError] = []
    seen: dict[str, str] = {}
    for key, column in mapping.items():
        where = f"{prefix}.{key}"
        if not is_mappable(key):
            errors.append(FieldError(where, "not a canonical HR field (nor attributes.<name>)"))
        if not isinstance(column, str) or not column.strip():
            errors.append(FieldError(where, "the column name must be non-empty text"))
            continue
        name = column.strip()
        if name in seen:
            errors.append(FieldError(where, f"column {name!r} is already mapped to "
                                            f"{seen[name]}"))
        else:
            seen[name] = key
    return errors


def check_mapping(mapping: Mapping[str, Any]) -> dict[str, str]:
    """The mapping with its column names trimmed; FeedFormatError when it is invalid."""
    errors = mapping_errors(mapping, prefix="mapping")
    if errors:
        raise FeedFormatError("the source's column mapping is invalid", errors=errors)
    return {key: str(column).strip() for key, column in mapping.items()}


def coerce_values(raw: Mapping[str, Any] | Iterable[tuple[str, Any]], *, row: int,
                  column_of: Callable[[str], str],
                  required: Iterable[str] = REQUIRED
                  ) -> tuple[dict[str, Any], list[RowError]]:
    """Canonical values of one record from its raw values (keyed by canonical field or
    ``attributes.<name>``), and every problem found in it.

    ``raw`` may also be (key, value) pairs. ``column_of`` names a field as the source
    does (a CSV header, a JSON key path) for the errors. ``required`` fields must hold a
    value. Attributes are gathered in ``values["attributes"]`` (empty ones left out). A
    record with errors must not be used.
    """
    values: dict[str, Any] = {}
    problems: list[tuple[str, str]] = []
    limits = _TEXT_LIMITS
    converters = CONVERTERS
    items: Iterable[tuple[str, Any]] = raw.items() if isinstance(raw, Mapping) else raw
    for key, value in items:
        # Plain text is most of a feed: checked inline, without a call per value.
        limit = limits.get(key)
        if limit is not None and value.__class__ is str:
            text = value.strip()
            if len(text) <= limit:
                values[key] = text or None
            else:
                problems.append((key, f"is longer than {limit} characters"))
            continue
        convert = converters.get(key)
        if convert is None:  # attributes.<name>
            attributes = values.setdefault("attributes", {})
            try:
                item = None if value is None else _attribute(value)
            except ValueError as exc:
                problems.append((key, str(exc)))
                continue
            if item is not None:
                attributes[key[len(ATTRIBUTE_PREFIX):]] = item
        elif value is None:
            values[key] = [] if key == "groups" else None
        else:
            try:
                values[key] = convert(value)
            except ValueError as exc:
                problems.append((key, str(exc)))
    for key in required:
        if values.get(key) is None and not any(p[0] == key for p in problems):
            problems.append((key, f"{key.replace('_', ' ')} is required"))
    if not problems:
        return values, []
    employee_id = values.get("employee_id")
    return values, [RowError(row, column_of(key), message, employee_id)
                    for key, message in problems]


def duplicate_errors(keys: Mapping[str, list[int]], *, column_of_row: Callable[[int], str],
                     what: str = "row") -> tuple[set[str], list[RowError]]:
    """Employee ids given by more than one row, and an error for each of those rows naming
    the others: none of them can be trusted over the rest."""
    duplicated: set[str] = set()
    errors: list[RowError] = []
    for employee_id, rows in keys.items():
        if len(rows) < 2:
            continue
        duplicated.add(employee_id)
        for row in rows:
            others = [str(r) for r in rows if r != row]
            plural = "s" if len(others) > 1 else ""
            errors.append(RowError(row, column_of_row(row),
                                   f"employee id {employee_id!r} is also given by {what}{plural} "
                                   f"{', '.join(others)}; every {what} with it is rejected",
                                   employee_id))
    return duplicated, errors
