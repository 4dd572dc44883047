"""The report registry: every report the service can export, core or plug-in.

A report is a :class:`ReportDef`: a name, its columns, a pydantic model of its parameters
(filters; validated before anything runs: unknown filters and malformed values are a 422),
and ``build``, which turns validated parameters into a :class:`ReportQuery`. A query is
either a SQLAlchemy ``Select`` whose result columns are the report's columns in order (the
exporter streams it, or on PostgreSQL lets the database write CSV through ``COPY``), or a
``rows`` callable yielding tuples (reports that need Python, e.g. role expansion as of a past
instant). Plug-ins (certification's evidence) call :func:`register_report` from their
composition root; the core never imports them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel
from sqlalchemy import Select
from sqlalchemy.orm import Session

from idgov.clock import Clock
from idgov.errors import NotFound


@dataclass(frozen=True)
class ReportQuery:
    """What an export reads: ``select`` (preferred: streamable, COPY-able) or ``rows``."""

    columns: tuple[str, ...]
    select: Select[Any] | None = None
    rows: Callable[[], Iterator[Sequence[Any]]] | None = None

    def __post_init__(self) -> None:
        if (self.select is None) == (self.rows is None):
            raise ValueError("a report query has exactly one of select and rows")


@dataclass(frozen=True)
class ReportDef:
    """One exportable report."""

    name: str
    title: str
    description: str
    params: type[BaseModel]
    build: Callable[[Session, BaseModel, Clock], ReportQuery]
    # The capability a caller needs to export it (row rules are the report's business).
    capability: str = "reports:read"
    columns: tuple[str, ...] = field(default=())


_REPORTS: dict[str, ReportDef] = {}


def register_report(report: ReportDef) -> None:
    """Add (or replace, by name) a report."""
    _REPORTS[report.name] = report


def get_report(name: str) -> ReportDef:
    """The report called ``name``; NotFound when there is none."""
    try:
        return _REPORTS[name]
    except KeyError:
        raise NotFound(f"there is no report {name!r}") from None


def all_reports() -> list[ReportDef]:
    """Every registered report, by name."""
    return [_REPORTS[name] for name in sorted(_REPORTS)]


def unregister_report(name: str) -> None:
    """Remove a report (tests, a plug-in being uninstalled); no error when it is absent."""
    _REPORTS.pop(name, None)
