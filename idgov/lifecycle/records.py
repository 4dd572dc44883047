"""The worker record every HR channel is turned into, before it is compared and applied.

CSV files, JSON pushes and SCIM requests all produce :class:`WorkerRecord` values holding
canonical field names (:data:`FIELDS`). A record from a snapshot or a full-row delta names
every field (absent optional fields are None: cleared); a partial record (a JSON event, a
SCIM PATCH) names only the fields it changes (``partial=True``) and is merged with the
identity's current values before comparison.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, time
from typing import Any

# Canonical fields, in the order a diff shows them. ``manager_employee_id`` names the
# manager by HR key; ``groups`` are organisational group names (SCIM Groups, or a CSV column
# of names separated by ";"); ``attributes`` holds extra HR attributes (organization,
# division, ...) as a flat mapping of strings. ``previous_employee_id`` names the worker's
# earlier HR key when HR gave them a new one (a contractor hired as an employee, a rehire
# under a new number): the identity is kept and re-keyed instead of a second one created.
FIELDS: tuple[str, ...] = (
    "employee_id", "previous_employee_id", "given_name", "family_name", "display_name",
    "email", "user_name",
    "manager_employee_id", "department", "location", "time_zone", "job_code", "job_title",
    "cost_center", "employment_type", "hire_date", "termination_date", "termination_time",
    "termination_immediate", "groups", "attributes",
)
REQUIRED: tuple[str, ...] = ("employee_id", "given_name", "family_name")
DATE_FIELDS: tuple[str, ...] = ("hire_date", "termination_date")
# Fields whose change makes a mover (birthright access is recomputed).
POSITION_FIELDS: tuple[str, ...] = ("department", "location", "job_code",
                                    "manager_employee_id", "cost_center", "groups")
# Fields stored on the identity row itself (the rest go in ``attributes``, groups in
# organisational group memberships, manager by id).
IDENTITY_COLUMNS: tuple[str, ...] = (
    "given_name", "family_name", "display_name", "email", "user_name", "department",
    "location", "time_zone", "job_code", "job_title", "cost_center", "employment_type",
    "hire_date", "termination_date",
)


@dataclass(frozen=True)
class WorkerRecord:
    """One worker as a channel gave it. ``row`` is the 1-based data row (CSV: the line of
    the header is row 1, so the first worker is row 2) or the index in a JSON batch."""

    row: int
    values: dict[str, Any]
    partial: bool = False

    @property
    def employee_id(self) -> str:
        return str(self.values["employee_id"])


@dataclass(frozen=True)
class RowError:
    """A rejected row: where (row, column as the source names it) and why."""

    row: int
    column: str | None
    message: str
    employee_id: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"row": self.row, "column": self.column, "message": self.message,
                "employee_id": self.employee_id}


@dataclass
class ParsedFeed:
    """What a channel read: the good records and the rejected rows."""

    records: list[WorkerRecord] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    rows: int = 0


def normalise_time(value: time | None) -> str | None:
    """A termination time as text (HH:MM:SS), for comparison and storage."""
    return value.isoformat() if value is not None else None


def iso_date(value: date | None) -> str | None:
    return value.isoformat() if value is not None else None
