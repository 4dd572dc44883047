"""``idgov requests sweep`` against a migrated database and a real signing key."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from idgov.audit.signing import ensure_keys
from idgov.config import Settings
from idgov.db.session import unit_of_work
from idgov.models.assignment import Assignment
from idgov.requests.cli import app
from tests.catalog.factories import Api, add_application, add_assignment, add_identity


@pytest.fixture
def cli_env(tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch) -> Settings:
    var = tmp_path / "cli-var"
    monkeypatch.setenv("IDGOV_VAR_DIR", str(var))
    monkeypatch.setenv("IDGOV_DATABASE_URL", db_url)
    settings = Settings()
    ensure_keys(settings.signing_key_path, settings.public_key_path)
    return settings


def test_sweep_ends_what_has_expired_and_prints_counts(
        cli_env: Settings, session_factory: sessionmaker[Session], client: TestClient,
        admin_headers: dict[str, str]) -> None:
    person = add_identity(session_factory, "E1")
    ent = Api(client, admin_headers, add_application(session_factory)).entitlement("Old")
    ended = add_assignment(session_factory, identity_id=person, entitlement_id=ent,
                           valid_from=datetime(2020, 1, 1, tzinfo=UTC),
                           valid_until=datetime(2020, 2, 1, tzinfo=UTC), reason="x")

    result = CliRunner().invoke(app, ["sweep"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"escalated": 0, "warned": 0, "expired": 1,
                                         "tasks_escalated": 0}
    with unit_of_work(session_factory) as session:
        row = session.get(Assignment, uuid.UUID(ended))
        assert row is not None and row.revoked_at is not None

    again = CliRunner().invoke(app, ["sweep"])
    assert json.loads(again.stdout) == {"escalated": 0, "warned": 0, "expired": 0,
                                         "tasks_escalated": 0}
