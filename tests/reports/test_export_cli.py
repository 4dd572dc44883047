"""``idgov reports list|export|verify`` on both backends; ``verify`` also offline in a
process of its own with nothing but the public key; any one-byte change fails it."""
# ruff: noqa: F811  (the fixtures imported from export_fixtures are parameters here)

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from idgov.audit.signing import ensure_keys, generate_signer, public_pem
from idgov.cli import app
from tests.reports.export_fixtures import exports, test_reports, world  # noqa: F401 (fixtures)
from tests.reports.export_world import Generated, expected_grants_csv


@pytest.fixture
def var_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "var"
    ensure_keys(folder / "audit-signing.key", folder / "audit-signing.pub")
    return folder


@pytest.fixture
def run(var_dir: Path, db_url: str) -> Any:
    runner = CliRunner()

    def invoke(*args: str) -> Any:
        return runner.invoke(app, ["reports", *args], env={
            "IDGOV_VAR_DIR": str(var_dir), "IDGOV_DATABASE_URL": db_url})
    return invoke


def _export(run: Any, folder: Path, *args: str) -> tuple[Path, Path]:
    result = run("export", "test-grants", "--out", str(folder), *args)
    assert result.exit_code == 0, result.output
    file, manifest = (Path(line) for line in result.stdout.splitlines())
    return file, manifest


def test_list_names_the_reports_and_their_filters(run: Any, test_reports: Generated) -> None:
    result = run("list")
    assert result.exit_code == 0, result.output
    line = next(x for x in result.stdout.splitlines() if x.startswith("test-grants "))
    assert line.endswith("Test grants  [application, privileged, granted_after, department]")
    assert any(x.startswith("entitlements ") for x in result.stdout.splitlines())


def test_export_writes_the_file_and_manifest_and_verify_accepts_them(
        run: Any, exports: Path, world: dict[str, uuid.UUID], var_dir: Path) -> None:
    file, manifest = _export(run, exports, "--format", "csv")
    assert file.read_bytes() == expected_grants_csv(world)
    assert manifest == file.with_name(file.name + ".manifest.json")
    assert json.loads(manifest.read_text())["rows"] == 4
    result = run("verify", str(file), str(manifest), "--public-key",
                 str(var_dir / "audit-signing.pub"))
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("export verified: report test-grants, 4 rows, csv, "
                                    "generated at ")


def test_any_one_byte_change_to_the_file_fails_verification(
        run: Any, exports: Path, world: dict[str, uuid.UUID]) -> None:
    file, manifest = _export(run, exports, "--param", "department=Finance")
    original = file.read_bytes()
    for position in (0, len(original) // 2, len(original) - 1):
        changed = bytearray(original)
        changed[position] ^= 0x01
        file.write_bytes(bytes(changed))
        result = run("verify", str(file), str(manifest))
        assert result.exit_code == 1, (position, result.output)
        assert "export NOT verified" in result.stderr
        assert "SHA-256 differs" in result.stderr
    file.write_bytes(original)
    assert run("verify", str(file), str(manifest)).exit_code == 0


def test_a_changed_manifest_or_another_key_fails_verification(
        run: Any, exports: Path, world: dict[str, uuid.UUID], tmp_path: Path) -> None:
    file, manifest = _export(run, exports)
    original = manifest.read_text()
    data = json.loads(original)
    data["parameters"]["application"] = "crm, eu"  # claims a filter that was not applied
    manifest.write_text(json.dumps(data))
    result = run("verify", str(file), str(manifest))
    assert result.exit_code == 1
    assert "signature does not verify" in result.stderr
    manifest.write_text(original)
    other = tmp_path / "other.pub"
    other.write_text(public_pem(generate_signer().public_key))
    result = run("verify", str(file), str(manifest), "--public-key", str(other))
    assert result.exit_code == 1
    assert f"signed with key {data['key_id']}, which is not among" in result.stderr


def test_verify_runs_offline_with_only_the_public_key(
        run: Any, exports: Path, world: dict[str, uuid.UUID], var_dir: Path,
        tmp_path: Path) -> None:
    file, manifest = _export(run, exports)
    key = tmp_path / "service.pem"
    key.write_bytes((var_dir / "audit-signing.pub").read_bytes())
    env = {k: v for k, v in os.environ.items() if not k.startswith("IDGOV_")}
    env.update(IDGOV_VAR_DIR=str(tmp_path / "empty"),
               IDGOV_DATABASE_URL="postgresql+psycopg://nobody@127.0.0.1:1/none")
    done = subprocess.run([sys.executable, "-c", "from idgov.cli import main; main()",
                           "reports", "verify", str(file),
                           str(manifest), "--public-key", str(key)],
                          capture_output=True, text=True, env=env, check=False, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("export verified: report test-grants")
    assert not (tmp_path / "empty").exists()


def test_bad_parameters_stop_the_export_before_any_file(
        run: Any, exports: Path, test_reports: Generated) -> None:
    result = run("export", "test-grants", "--out", str(exports), "--param", "colour=red",
                 "--param", "privileged=perhaps")
    assert result.exit_code == 2
    assert "error: invalid parameters for report test-grants" in result.stderr
    assert "  colour: unknown filter" in result.stderr
    assert "  privileged: " in result.stderr
    result = run("export", "no-such", "--out", str(exports))
    assert result.exit_code == 2 and "there is no report 'no-such'" in result.stderr
    assert not exports.exists()


def test_an_interrupted_export_exits_1_and_keeps_a_partial_file(
        run: Any, exports: Path, test_reports: Generated) -> None:
    result = run("export", "test-generated", "--out", str(exports), "-p", "rows=5000",
                 "-p", "fail_after=4500")
    assert result.exit_code == 1
    assert "No space left on device" in result.stderr
    assert "is incomplete and has no manifest" in result.stderr
    names = [p.name for p in exports.iterdir()]
    assert len(names) == 1 and names[0].endswith(".csv.partial")
