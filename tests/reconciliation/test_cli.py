"""``idgov reconcile APPLICATION [--remediate]`` and ``idgov aggregate APPLICATION``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from connectors.errors import TargetUnavailable
from idgov.audit.signing import ensure_keys
from idgov.config import Settings
from idgov.reconciliation.cli import app
from tests.reconciliation.helpers import Lab


@pytest.fixture
def cli_env(tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("IDGOV_VAR_DIR", str(tmp_path / "cli-var"))
    monkeypatch.setenv("IDGOV_DATABASE_URL", db_url)
    settings = Settings()
    ensure_keys(settings.signing_key_path, settings.public_key_path)
    return settings


def _seed(lab: Lab) -> None:
    lab.person("E1")
    g1 = lab.entitlement("g1")
    lab.assign("E1", g1)
    lab.target.add_entitlement("g1")
    lab.target.add_account("e1", {"employeeNumber": "E1"})
    lab.target.add_account("stray", {})


def test_reconcile_by_name_prints_the_run(cli_env: Settings, lab: Lab) -> None:
    _seed(lab)

    result = CliRunner().invoke(app, ["reconcile", "Directory", "--remediate"])

    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert (out["kind"], out["state"], out["application_id"]) == (
        "reconciliation", "succeeded", str(lab.application_id))
    assert (out["counts"]["orphan_account"], out["counts"]["missing_grant"],
            out["counts"]["operations_queued"]) == (1, 1, 1)
    assert [o.action for o in lab.operations()] == ["grant"]


def test_aggregate_by_id(cli_env: Settings, lab: Lab) -> None:
    _seed(lab)

    result = CliRunner().invoke(app, ["aggregate", str(lab.application_id)])

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["counts"]["orphans"] == 1
    assert lab.accounts() == {"e1": ("E1", "active"), "stray": (None, "active")}


def test_exit_codes(cli_env: Settings, lab: Lab) -> None:
    _seed(lab)
    lab.target.fail_next(TargetUnavailable("directory down"))

    failed = CliRunner().invoke(app, ["reconcile", "Directory"])
    assert failed.exit_code == 1
    assert json.loads(failed.stdout)["error"] == "system_unavailable: directory down"

    unknown = CliRunner().invoke(app, ["aggregate", "Nowhere"])
    assert unknown.exit_code == 2
    assert "no application is named 'Nowhere'" in unknown.stderr
