"""``idgov sod scan``: table or JSON Lines, exit 1 while unmitigated violations exist."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from idgov.cli import app as idgov_app
from idgov.clock import FixedClock
from tests.catalog.factories import Api, add_identity


@pytest.fixture
def cli_env(tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IDGOV_VAR_DIR", str(tmp_path / "cli-var"))
    monkeypatch.setenv("IDGOV_DATABASE_URL", db_url)


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(idgov_app, ["sod", "scan", *args])
    return result.exit_code, result.stdout, result.stderr


def test_json_lines_and_exit_1_while_unmitigated_violations_exist(
        cli_env: None, api: Api, org: dict[str, Any], clock: FixedClock) -> None:
    code, out, err = run("--json", "--as-of", clock.now().isoformat())
    assert code == 1, err
    lines = [json.loads(line) for line in out.splitlines()]
    assert sorted((x["identity"]["employee_id"], x["rule"]["name"], x["mitigated"])
                  for x in lines) == [
        ("E1", "Clerk vs vendor", False), ("E1", "Pay vs vendor", False),
        ("E3", "Clerk vs vendor", False), ("E3", "Pay vs vendor", True)]
    (e1,) = [x for x in lines if x["identity"]["employee_id"] == "E1"
             and x["rule"]["name"] == "Pay vs vendor"]
    assert [s["name"] for s in e1["side_a"][0]["grants"][0]["path"]] == [
        "Finance Clerk", "AP Processor", "payments-release"]


def test_only_mitigated_violations_exit_0(cli_env: None, api: Api, org: dict[str, Any],
                                          clock: FixedClock,
                                          session_factory: sessionmaker[Session]) -> None:
    now = clock.now().isoformat()
    api.ok("PATCH", f"/sod-rules/{org['other_rule']}", json={"enabled": False})
    assert run("--as-of", now)[0] == 1  # E1 still breaks "Pay vs vendor"
    api.ok("POST", f"/sod-rules/{org['rule']}/exceptions", 201, json={
        "identity_id": org["E1"], "approver_id": add_identity(session_factory, "M2"),
        "control": "dual payment release",
        "expires_at": (clock.now() + timedelta(days=30)).isoformat()})
    clock.advance(timedelta(minutes=1))
    code, out, _err = run("--as-of", clock.now().isoformat())
    assert code == 0
    assert "2 violation(s), 0 unmitigated" in out
    code, out, _err = run("--as-of", (clock.now() - timedelta(days=1)).isoformat())
    assert code == 0
    assert "0 violation(s), 0 unmitigated" in out


def test_table_names_people_rules_and_paths(cli_env: None, api: Api, org: dict[str, Any],
                                            clock: FixedClock) -> None:
    code, out, _err = run("--rule", org["rule"], "--as-of", clock.now().isoformat())
    assert code == 1
    assert "Pay vs vendor" in out and "Clerk vs vendor" not in out
    assert "E1 Test E1" in out and "E3 Test E3" in out
    assert "2 violation(s), 1 unmitigated" in out


@pytest.mark.parametrize(("args", "message"), [
    (("--rule", "no such rule"), "no SoD rule has the id or name"),
    (("--as-of", "yesterday"), "not an ISO 8601 date-time"),
    (("--as-of", "2026-01-15T09:00:00"), "give a UTC offset"),
])
def test_bad_options_exit_2(cli_env: None, api: Api, org: dict[str, Any],
                            args: tuple[str, ...], message: str) -> None:
    code, out, err = run(*args)
    assert code == 2
    assert message in err and out == ""
