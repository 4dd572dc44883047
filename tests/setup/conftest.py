"""Run the CLI against a temporary var folder and a chosen database, through the environment."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from idgov.cli import app

RunCli = Callable[..., Result]


@pytest.fixture
def var_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh var folder; the database defaults to an SQLite file inside it."""
    folder = tmp_path / "deployment" / "var"
    for name in ("IDGOV_DATABASE_URL", "IDGOV_AUDIT_SIGNING_KEY", "IDGOV_AUDIT_PUBLIC_KEY",
                 "IDGOV_SECRET_KEY_FILE", "IDGOV_PUBLIC_URL", "IDGOV_HOST", "IDGOV_PORT",
                 "IDGOV_SETTINGS_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("IDGOV_VAR_DIR", str(folder))
    return folder


@pytest.fixture
def run_cli() -> RunCli:
    runner = CliRunner()

    def run(*args: str) -> Result:
        result = runner.invoke(app, list(args))
        assert result.exit_code == 0, (result.output, result.exception)
        return result

    return run
