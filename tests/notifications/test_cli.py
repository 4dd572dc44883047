"""``idgov notifications send`` (the typer app of idgov.notifications.cli)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from idgov.audit.signing import ensure_keys
from idgov.clock import FixedClock
from idgov.config import Settings
from idgov.notifications.cli import app
from tests.notifications.conftest import SmtpServer, add_notification, add_person, load


@pytest.fixture
def cli_env(tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("IDGOV_VAR_DIR", str(tmp_path / "cli-var"))
    monkeypatch.setenv("IDGOV_DATABASE_URL", db_url)
    settings = Settings()
    ensure_keys(settings.signing_key_path, settings.public_key_path)
    return settings


def test_send_mails_everything_due_in_batches_and_prints_the_counts(
        cli_env: Settings, monkeypatch: pytest.MonkeyPatch, smtp_server: SmtpServer,
        session_factory: sessionmaker[Session], clock: FixedClock) -> None:
    monkeypatch.setenv("IDGOV_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("IDGOV_SMTP_PORT", str(smtp_server.port))
    smtp_server.recorder.refuse["bob@corp.example"] = "451 4.3.0 later"
    ids = [add_notification(session_factory, clock, add_person(session_factory, name))
           for name in ("Ann", "Bob", "Cat", "Dan")]

    result = CliRunner().invoke(app, ["send", "--batch-size", "2"])

    assert result.exit_code == 0, result.output
    assert result.stdout == "sent 3, retried 1, failed 0\n"
    assert sorted(r for m in smtp_server.recorder.received for r in m.rcpt_tos) == [
        "ann@corp.example", "cat@corp.example", "dan@corp.example"]
    assert [load(session_factory, i).email_state for i in ids] == [
        "sent", "pending", "sent", "sent"]


def test_send_without_smtp_says_so_and_sends_nothing(
        cli_env: Settings, monkeypatch: pytest.MonkeyPatch,
        session_factory: sessionmaker[Session], clock: FixedClock) -> None:
    monkeypatch.delenv("IDGOV_SMTP_HOST", raising=False)
    new_id = add_notification(session_factory, clock, add_person(session_factory, "Ann"))
    result = CliRunner().invoke(app, ["send"])
    assert result.exit_code == 0
    assert result.stdout == "sent 0, retried 0, failed 0\n"
    assert "SMTP is not configured" in result.stderr
    assert load(session_factory, new_id).email_state == "pending"
