"""A small report of the tests' own and the data it reads, for the export machinery's tests.

``test-grants`` selects assignments with their holder, entitlement and application: text
that needs CSV quoting (commas, quotes, line breaks, the empty string, non-ASCII), NULLs,
booleans, timestamps with and without microseconds, a date, an integer and UUIDs: every
kind of column the database CSV paths format. ``test-generated`` yields rows from Python
(``rows``), as many as asked, lazily; ``test-failing`` breaks after some rows.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from idgov.clock import Clock
from idgov.db.session import unit_of_work
from idgov.models.application import Application
from idgov.models.assignment import Assignment
from idgov.models.catalog import Entitlement
from idgov.models.identity import Identity
from idgov.reports.registry import ReportDef, ReportQuery

GRANT_COLUMNS = ("employee_id", "name", "department", "hire_date", "application",
                 "entitlement", "privileged", "max_days", "reason", "granted_at",
                 "revoked_at", "assignment_id")
T0 = datetime(2026, 1, 10, 8, 30, tzinfo=UTC)
T1 = datetime(2026, 1, 12, 17, 5, 9, 123456, tzinfo=UTC)


class GrantFilters(BaseModel):
    model_config = ConfigDict(extra="forbid")

    application: str | None = None
    privileged: bool | None = None
    granted_after: datetime | None = None
    department: list[str] | None = Field(default=None, description="any of these")


def _grants(session: Session, params: BaseModel, clock: Clock) -> ReportQuery:
    assert isinstance(params, GrantFilters)
    stmt = (
        select(Identity.employee_id, Identity.display_name, Identity.department,
               Identity.hire_date, Application.name, Entitlement.name, Entitlement.privileged,
               Entitlement.max_duration_days, Assignment.reason, Assignment.valid_from,
               Assignment.revoked_at, Assignment.id)
        .join(Identity, Identity.id == Assignment.identity_id)
        .join(Entitlement, Entitlement.id == Assignment.entitlement_id)
        .join(Application, Application.id == Entitlement.application_id)
        .order_by(Identity.employee_id, Entitlement.name)
    )
    if params.application is not None:
        stmt = stmt.where(Application.name == params.application)
    if params.privileged is not None:
        stmt = stmt.where(Entitlement.privileged.is_(params.privileged))
    if params.granted_after is not None:
        stmt = stmt.where(Assignment.valid_from > params.granted_after)
    if params.department:
        stmt = stmt.where(Identity.department.in_(params.department))
    return ReportQuery(columns=GRANT_COLUMNS, select=stmt)


class GeneratedParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rows: int = Field(default=10, ge=0)
    fail_after: int | None = None


class Generated:
    """Rows made in Python; remembers whether the consumer stopped reading them."""

    def __init__(self) -> None:
        self.closed_early = False
        self.produced = 0
        self.closed = threading.Event()  # set when the rows stop, however they stop

    def build(self, session: Session, params: BaseModel, clock: Clock) -> ReportQuery:
        assert isinstance(params, GeneratedParams)

        def rows() -> Iterator[Sequence[Any]]:
            try:
                for n in range(params.rows):
                    if params.fail_after is not None and n == params.fail_after:
                        raise OSError(28, "No space left on device")
                    self.produced += 1
                    yield (n, f"row {n}, with a comma", n % 3 == 0, T0)
            except GeneratorExit:
                self.closed_early = True
                raise
            finally:
                self.closed.set()
        return ReportQuery(columns=("n", "text", "flag", "at"), rows=rows)


GRANTS_HEADER = ("employee_id,name,department,hire_date,application,entitlement,privileged,"
          "max_days,reason,granted_at,revoked_at,assignment_id\r\n")


def expected_grants_csv(ids: dict[str, uuid.UUID]) -> bytes:
    return (
        GRANTS_HEADER
        + 'E001,"Lovelace, Ada ""the first""",Finance,2020-02-29,ledger,Payments approver,'
        f'true,30,"audit, year-end",2026-01-10T08:30:00+00:00,,{ids["g1"]}\r\n'
        + 'E001,"Lovelace, Ada ""the first""",Finance,2020-02-29,ledger,Reader,false,,"",'
        '2026-01-12T17:05:09.123456+00:00,2026-01-12T17:05:09.123456+00:00,'
        f'{ids["g2"]}\r\n'
        + 'E002,"Bob\nMultiline","",,"crm, eu","Sales ""key""",false,0,,'
        f'2026-01-10T08:30:00+00:00,,{ids["g3"]}\r\n'
        + "E003,Cyd Ørsted,,2021-01-01,ledger,Reader,false,,\\.,"
        f"2026-01-12T17:05:09.123456+00:00,,{ids['g4']}\r\n"
    ).encode()


def grants_report() -> ReportDef:
    return ReportDef(name="test-grants", title="Test grants", description="Grants (tests)",
                     params=GrantFilters, build=_grants, columns=GRANT_COLUMNS)


def generated_report(generated: Generated) -> ReportDef:
    return ReportDef(name="test-generated", title="Generated", description="Python rows",
                     params=GeneratedParams, build=generated.build,
                     columns=("n", "text", "flag", "at"))


def populate(factory: sessionmaker[Session]) -> dict[str, uuid.UUID]:
    """Three people, two applications, four grants; returns the assignment ids by key."""
    ids = {k: uuid.uuid4() for k in ("ada", "bob", "cyd", "app1", "app2", "e1", "e2", "e3",
                                     "g1", "g2", "g3", "g4")}
    with unit_of_work(factory) as session:
        session.add_all([
            Identity(id=ids["ada"], employee_id="E001", given_name="Ada", family_name="L",
                     display_name='Lovelace, Ada "the first"', department="Finance",
                     hire_date=date(2020, 2, 29)),
            Identity(id=ids["bob"], employee_id="E002", given_name="Bob", family_name="M",
                     display_name="Bob\nMultiline", department="", hire_date=None),
            Identity(id=ids["cyd"], employee_id="E003", given_name="Cyd", family_name="Ø",
                     display_name="Cyd Ørsted", department=None, hire_date=date(2021, 1, 1)),
        ])
        session.flush()
        session.add_all([
            Application(id=ids["app1"], name="ledger", connector_kind="manual"),
            Application(id=ids["app2"], name="crm, eu", connector_kind="manual"),
        ])
        session.flush()
        session.add_all([
            Entitlement(id=ids["e1"], application_id=ids["app1"], native_id="cn=pay",
                        name="Payments approver", privileged=True, max_duration_days=30),
            Entitlement(id=ids["e2"], application_id=ids["app1"], native_id="cn=read",
                        name="Reader", privileged=False),
            Entitlement(id=ids["e3"], application_id=ids["app2"], native_id="cn=x",
                        name='Sales "key"', privileged=False, max_duration_days=0),
        ])
        session.flush()
        session.add_all([
            Assignment(id=ids["g1"], identity_id=ids["ada"], entitlement_id=ids["e1"],
                       source="admin", reason="audit, year-end", valid_from=T0,
                       granted_by="admin"),
            Assignment(id=ids["g2"], identity_id=ids["ada"], entitlement_id=ids["e2"],
                       source="request", reason="", valid_from=T1, revoked_at=T1),
            Assignment(id=ids["g3"], identity_id=ids["bob"], entitlement_id=ids["e3"],
                       source="birthright", reason=None, valid_from=T0),
            Assignment(id=ids["g4"], identity_id=ids["cyd"], entitlement_id=ids["e2"],
                       source="admin", reason="\\.", valid_from=T1),
        ])
    return ids
