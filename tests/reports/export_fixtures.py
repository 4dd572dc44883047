"""Fixtures of the export machinery's tests (imported by name into each test module, so that
the definitions' tests in this folder keep their own fixtures)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from idgov.reports.registry import register_report, unregister_report
from tests.reports.export_world import Generated, generated_report, grants_report, populate


@pytest.fixture
def test_reports() -> Iterator[Generated]:
    """``test-grants`` and ``test-generated`` registered for the test, removed after."""
    generated = Generated()
    register_report(grants_report())
    register_report(generated_report(generated))
    yield generated
    unregister_report("test-grants")
    unregister_report("test-generated")


@pytest.fixture
def world(session_factory: sessionmaker[Session], test_reports: Generated
          ) -> dict[str, uuid.UUID]:
    return populate(session_factory)


@pytest.fixture
def exports(tmp_path: Path) -> Path:
    """A folder for export files (tmp_path itself holds the SQLite database)."""
    return tmp_path / "exports"
