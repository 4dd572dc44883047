"""``idgov hr import FILE --source NAME`` against the test database, with a real signing
key: the run is printed as JSON, exit 0 applied, 1 held (then ``idgov hr reject``), 2
unusable; what it did is visible through the API like any other run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from idgov.audit.signing import ensure_keys
from idgov.cli import app as idgov_app
from idgov.config import Settings
from tests.e2e.conftest import Story
from tests.e2e.hr_world import Hr, csv_bytes, worker


@pytest.fixture
def cli_env(tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IDGOV_VAR_DIR", str(tmp_path / "cli-var"))
    monkeypatch.setenv("IDGOV_DATABASE_URL", db_url)
    settings = Settings()
    ensure_keys(settings.signing_key_path, settings.public_key_path)


def _hr(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(idgov_app, ["hr", *args])
    return result.exit_code, result.stdout, result.stderr


def test_the_cli_imports_a_file_and_a_held_run_is_rejected_from_it(
        cli_env: None, story: Story, tmp_path: Path) -> None:
    hr = Hr(story)
    hr.create_source(name="Workday export")
    rows = [worker("K001", "Kim", "Kłos", start="2020-03-02"),
            worker("K002", "Kai", "D'Souza", manager="K001", start="2021-09-01")]
    path = tmp_path / "workday.csv"
    path.write_bytes(csv_bytes(rows))

    code, out, err = _hr("import", str(path), "--source", "Workday export")
    assert code == 0, err
    result = json.loads(out)
    assert (result["state"], result["mode"], result["counts"]["joiners"],
            result["rejected_rows"]) == ("applied", "snapshot", 2, 0)
    run = story.call("GET", f"/hr/runs/{result['run_id']}")
    assert (run["channel"], run["file_name"], run["started_by"]) == (
        "file", "workday.csv", "system:hr-cli")
    kai = hr.identity("K002")
    assert (kai["family_name"], kai["manager_id"], kai["lifecycle_state"]) == (
        "D'Souza", hr.identity("K001")["id"], "active")

    # The same file again: every row read, nothing changed.
    code, out, _ = _hr("import", str(path), "--source", "workday EXPORT")
    assert code == 0 and json.loads(out)["counts"]["unchanged"] == 2

    # Half the population missing: held (exit 1), then rejected from the CLI.
    path.write_bytes(csv_bytes(rows[:1]))
    code, out, _ = _hr("import", str(path), "--source", "Workday export")
    held = json.loads(out)
    assert (code, held["state"], held["counts"]["leavers"]) == (1, "held", 1)
    code, out, _ = _hr("reject", held["run_id"], "--note", "truncated export")
    assert (code, json.loads(out)["state"]) == (0, "rejected")
    assert hr.identity("K002")["lifecycle_state"] == "active"

    code, out, _ = _hr("process-due")
    assert (code, json.loads(out)) == (0, {"applied": 0})
    code, _, err = _hr("import", str(path), "--source", "No such source")
    assert code == 2 and "No such source" in err
