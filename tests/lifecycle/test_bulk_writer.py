"""The driver-level writer of the bulk joiner path and of ``bulk_insert`` (COPY on
PostgreSQL, executemany on SQLite) stores exactly what SQLAlchemy's insert stores: the same
rows, written once each way in a rolled-back transaction, read back as the database's own
text, are equal."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import Table, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from idgov.db.rawwrite import Pipeline, RowWriter, insert_dicts
from idgov.db.repository import bulk_insert
from idgov.models.application import Application
from idgov.models.assignment import Assignment
from idgov.models.audit import AuditEvent
from idgov.models.catalog import Entitlement
from idgov.models.hr import LifecycleEvent
from idgov.models.identity import Group, GroupMember, Identity
from idgov.models.provisioning import ProvisioningOperation

NOW = datetime(2026, 3, 2, 9, 30, 15, 123456, tzinfo=UTC)
PARIS = timezone(timedelta(hours=1))
APP, ENT, PERSON, BOSS, GROUP, ASG = (uuid.UUID(int=n) for n in range(1, 7))
# Text a COPY line must escape (tab, newline, backslash), accents, apostrophes, quotes.
TRICKY = "Zoë O'Brien-\"Ñúñez\"\t\\ two\nlines\r"


def _identity(identity_id: uuid.UUID, employee_id: str, manager: uuid.UUID | None,
              **extra: Any) -> dict[str, Any]:
    return {"id": identity_id, "employee_id": employee_id, "given_name": "Zoë",
            "family_name": TRICKY, "display_name": f"Zoë {TRICKY}",
            "email": f"{employee_id}@example.com", "user_name": None, "manager_id": manager,
            "department": "R&D, Paris", "location": "Paris", "time_zone": None,
            "job_code": "ENG-1", "job_title": None, "cost_center": "CC-1",
            "employment_type": "employee", "lifecycle_state": "prehire",
            "hire_date": date(2026, 4, 1), "termination_date": None,
            "attributes": {"division": "Núcleo", "legal_entity": None, "n": 3},
            "external_id": None, "hr_source_id": None, "created_at": NOW, "updated_at": NOW,
            **extra}


TABLES: list[tuple[Any, list[dict[str, Any]]]] = [
    (Identity, [_identity(BOSS, "E1", None),
                _identity(PERSON, "E2", BOSS, hire_date=None,
                          attributes={}, created_at=NOW.astimezone(PARIS))]),
    (Group, [{"id": GROUP, "name": "Ops", "kind": "organisation", "description": None,
              "email": None, "owner_id": None, "external_id": None, "created_at": NOW,
              "updated_at": NOW}]),
    (GroupMember, [{"group_id": GROUP, "identity_id": PERSON}]),
    (Assignment, [{"id": ASG, "identity_id": PERSON, "role_id": None, "entitlement_id": ENT,
                   "source": "birthright", "reason": "birthright rule Ops", "request_line_id":
                   None, "birthright_rule_id": None, "granted_by": "system:hr-feed",
                   "valid_from": NOW + timedelta(days=30), "valid_until": None,
                   "revoked_at": None, "revoked_by": None, "revoke_reason": None,
                   "last_certified_at": None, "last_certified_by": None, "created_at": NOW,
                   "updated_at": NOW}]),
    (ProvisioningOperation, [
        {"id": uuid.UUID(int=100 + n), "idempotency_key": f"k{n}", "identity_id": PERSON,
         "application_id": APP, "entitlement_id": ENT if n else None, "account_id": None,
         "action": "grant" if n else "create_account", "ordinal": 10 ** 12 + n,
         "state": "pending", "cause": "assignment", "cause_id": str(ASG),
         "assignment_id": ASG, "request_line_id": None, "attempts": 0,
         "next_attempt_at": None if n else NOW + timedelta(days=30),
         "detail": {"username": "zobrien"} if n else {}, "created_at": NOW,
         "updated_at": NOW} for n in range(2)]),
    (LifecycleEvent, [{"id": uuid.UUID(int=200), "identity_id": PERSON, "kind": "activate",
                       "due_at": NOW + timedelta(days=30), "state": "scheduled",
                       "run_id": None, "change_id": None, "reason": "hire date reached",
                       "detail": {"termination_time": None}, "created_at": NOW,
                       "done_at": None}]),
    (AuditEvent, [{"id": uuid.UUID(int=300 + n), "seq": 10 + n, "occurred_at": NOW,
                   "actor_type": "system", "actor_id": None, "actor_name": "hr-feed",
                   "action": "identity.create", "object_type": "identity",
                   "object_id": str(PERSON), "before": None,
                   "after": {"family_name": TRICKY, "list": [1, "é", None]} if n else None,
                   "context": {"hr_feed_run_id": "x"}, "prev_hash": "0" * 64,
                   "hash": f"{n}" * 64, "key_id": "k1", "signature": "sig" if n else None}
                  for n in range(2)]),
]


def _core_insert(session: Session, model: Any, rows: Sequence[Mapping[str, Any]]) -> None:
    session.execute(model.__table__.insert(), list(rows))


def _stored(session: Session, table: Table,
            leave_out: tuple[str, ...] = ()) -> list[tuple[Any, ...]]:
    """Every row as the database's own text (and, on SQLite, the storage class)."""
    sqlite = session.get_bind().dialect.name == "sqlite"
    parts = []
    for column in table.columns:
        if column.name in leave_out:
            continue
        parts.append(f"CAST({column.name} AS TEXT)")
        if sqlite:
            parts.append(f"typeof({column.name})")
    order = ", ".join(c.name for c in table.primary_key.columns)
    connection = session.connection()
    return [tuple(r) for r in connection.exec_driver_sql(
        f"SELECT {', '.join(parts)} FROM {table.name} ORDER BY {order}")]


def _each_way(factory: sessionmaker[Session], model: Any,
              rows: Sequence[Mapping[str, Any]]) -> tuple[list[Any], list[Any]]:
    results = []
    for write in (lambda s: _core_insert(s, model, rows),
                  lambda s: insert_dicts(s, model, rows)):
        with factory() as session:
            session.add(Application(id=APP, name="ERP", connector_kind="memory"))
            session.flush()
            session.add(Entitlement(id=ENT, application_id=APP, native_id="cn=x", name="x"))
            session.flush()
            if model not in (Identity, Group, AuditEvent):
                bulk_insert(session, Identity, TABLES[0][1])
            if model is GroupMember:
                bulk_insert(session, Group, TABLES[1][1])
            if model is ProvisioningOperation:
                bulk_insert(session, Assignment, TABLES[3][1])
            write(session)
            results.append(_stored(session, model.__table__))
            session.rollback()
    return results[0], results[1]


@pytest.mark.parametrize("model,rows", TABLES, ids=[m.__name__ for m, _r in TABLES])
def test_the_driver_writer_stores_what_sqlalchemy_stores(
        session_factory: sessionmaker[Session], model: Any,
        rows: list[dict[str, Any]]) -> None:
    by_sqlalchemy, by_driver = _each_way(session_factory, model, rows)
    assert len(by_driver) == len(rows)
    assert by_driver == by_sqlalchemy


def test_left_out_columns_take_their_python_defaults(
        session_factory: sessionmaker[Session]) -> None:
    """An application written without ``settings``, ``risk`` and the flag gets ``{}``,
    ``medium`` and false, as SQLAlchemy's insert gives them."""
    row = {"id": APP, "name": "ERP", "connector_kind": "memory", "description": None}
    by_sqlalchemy, by_driver = _each_way_application(session_factory, row)
    assert by_driver == by_sqlalchemy
    with session_factory() as session:
        RowWriter(session, Application, list(row)).write_dicts([row])
        stored = session.get(Application, APP)
        assert stored is not None
        assert (stored.settings, stored.risk, stored.remove_unassigned_access) == (
            {}, "medium", False)
        session.rollback()


def _each_way_application(factory: sessionmaker[Session],
                          row: dict[str, Any]) -> tuple[list[Any], list[Any]]:
    results = []
    for write in (lambda s: _core_insert(s, Application, [row]),
                  lambda s: insert_dicts(s, Application, [row])):
        with factory() as session:
            write(session)
            # created_at/updated_at come from the database clock: left out
            results.append(_stored(session, Application.__table__,  # type: ignore[arg-type]
                                   ("created_at", "updated_at")))
            session.rollback()
    return results[0], results[1]


def test_bulk_insert_goes_through_the_driver_for_the_tables_of_the_bulk_path(
        session_factory: sessionmaker[Session]) -> None:
    with session_factory() as session:
        assert all(RowWriter.supports(session, model) for model, _rows in TABLES)
        # A LargeBinary and a Float column: SQLAlchemy's insert is kept for applications.
        assert not RowWriter.supports(session, Application)


def test_a_driver_error_is_raised_as_sqlalchemy_raises_it(
        session_factory: sessionmaker[Session]) -> None:
    group = TABLES[1][1]
    with session_factory() as session:
        bulk_insert(session, Group, group)
        with pytest.raises(IntegrityError):
            bulk_insert(session, Group, group)
        session.rollback()


def test_rows_given_to_a_pipeline_are_stored_before_the_next_statement_runs(
        session_factory: sessionmaker[Session]) -> None:
    with session_factory() as session, Pipeline(session) as pipeline:
        writer = RowWriter(session, Group, list(TABLES[1][1][0]))
        for n in range(3):
            writer.write_dicts([{**TABLES[1][1][0], "id": uuid.UUID(int=900 + n),
                                 "name": f"Team {n}"}], pipeline=pipeline)
        names = session.scalars(select(Group.name).order_by(Group.name)).all()
        assert names == ["Team 0", "Team 1", "Team 2"]
        session.rollback()


def test_a_failed_pipeline_write_raises_by_the_next_statement(
        session_factory: sessionmaker[Session]) -> None:
    """On PostgreSQL the write runs on the pipeline's thread: its error comes with the next
    statement; on SQLite writes run at once and raise there."""
    with session_factory() as session:
        with Pipeline(session) as pipeline:
            writer = RowWriter(session, Group, list(TABLES[1][1][0]))
            writer.write_dicts(TABLES[1][1], pipeline=pipeline)
            with pytest.raises(IntegrityError):
                writer.write_dicts(TABLES[1][1], pipeline=pipeline)  # the same id again
                session.scalars(select(Group.name)).all()
        session.rollback()
