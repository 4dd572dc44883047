"""Test databases: every database test runs on SQLite and on PostgreSQL.

PostgreSQL comes from ``IDGOV_TEST_DATABASE_URL``, or 127.0.0.1:5432/test when it answers.
The suite makes a scratch database of its own beside it, migrates it once with Alembic and
empties it after each test. SQLite: a migrated template file copied for each test.
``IDGOV_TEST_BACKENDS=sqlite`` limits the run to SQLite (``make test-fast``).
"""

from __future__ import annotations

import os
import shutil
import socket
import uuid
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url

from idgov.db.migrate import upgrade
from idgov.db.session import make_engine
from idgov.models import Base

DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def required() -> bool:
    return os.environ.get("IDGOV_REQUIRE_SERVICES") == "1"


def missing(what: str) -> None:
    """Skip, or fail when the run demands every service."""
    if required():
        pytest.fail(f"{what} is required (IDGOV_REQUIRE_SERVICES=1) but not available")
    pytest.skip(f"{what} not available")


def backends() -> list[str]:
    wanted = os.environ.get("IDGOV_TEST_BACKENDS", "sqlite,postgresql")
    return [b.strip() for b in wanted.split(",") if b.strip()]


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def pg_base_url() -> str | None:
    url = os.environ.get("IDGOV_TEST_DATABASE_URL") or DEFAULT_PG
    parsed = make_url(url)
    if not _port_open(parsed.host or "127.0.0.1", parsed.port or 5432):
        return None
    return url


class PostgresScratch:
    """A database of this test run's own on the PostgreSQL server, migrated once."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.name = f"idgov_t_{uuid.uuid4().hex[:10]}"
        self.url = make_url(base_url).set(database=self.name).render_as_string(
            hide_password=False)
        self._admin = make_engine(base_url, isolation_level="AUTOCOMMIT")
        with self._admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{self.name}"'))
        self.engine = make_engine(self.url)
        upgrade(self.engine)
        self.tables = [t.name for t in Base.metadata.sorted_tables]

    def reset(self) -> None:
        self.engine.dispose()
        with self._admin.connect() as conn:
            conn.execute(text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = :db AND pid <> pg_backend_pid()"), {"db": self.name})
        with self.engine.begin() as conn:
            conn.execute(text("TRUNCATE " + ", ".join(f'"{t}"' for t in self.tables)
                              + " RESTART IDENTITY CASCADE"))

    def drop(self) -> None:
        self.engine.dispose()
        with self._admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))
        self._admin.dispose()


class SqliteTemplate:
    """A migrated SQLite file that each test copies."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / "template.db"
        engine = make_engine(f"sqlite:///{self.path}")
        upgrade(engine)
        with engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        engine.dispose()

    def copy_to(self, folder: Path) -> str:
        target = folder / "idgov.db"
        shutil.copyfile(self.path, target)
        return f"sqlite:///{target}"


def make_test_engine(url: str) -> Engine:
    return make_engine(url)
