"""``idgov audit export`` / ``verify-slice`` and ``GET /audit/export`` on both backends: the
file and the HTTP body hold the same slice, verify offline, and a change makes the check
exit 1; auditors may export, requesters may not."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from idgov.audit.signing import Signer, generate_signer, public_pem
from idgov.audit.slice_format import encode_line
from idgov.cli import app
from idgov.clock import FixedClock
from tests.audit.slice_world import build_world, parse, shape
from tests.conftest import START, make_token


@pytest.fixture
def var_dir(tmp_path: Path, signer: Signer) -> Path:
    """The CLI's var folder, holding the same signing key as the web app of the tests."""
    folder = tmp_path / "cli-var"
    folder.mkdir()
    (folder / "audit-signing.key").write_bytes(signer.private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    (folder / "audit-signing.pub").write_text(public_pem(signer.public_key))
    return folder


@pytest.fixture
def run(var_dir: Path, db_url: str) -> Any:
    runner = CliRunner()

    def invoke(*args: str) -> Any:
        return runner.invoke(app, ["audit", *args], env={
            "IDGOV_VAR_DIR": str(var_dir), "IDGOV_DATABASE_URL": db_url})
    return invoke


@pytest.fixture
def auditor(session_factory: sessionmaker[Session], clock: FixedClock) -> dict[str, str]:
    headers = {"Authorization": "Bearer " + make_token(session_factory, clock, "auditor",
                                                       ["auditor"])}
    build_world(session_factory, clock)
    return headers


@pytest.fixture
def public_key(tmp_path: Path, signer: Signer) -> Path:
    path = tmp_path / "service.pub"
    path.write_text(public_pem(signer.public_key))
    return path


def _without(line: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {k: v for k, v in line.items() if k not in keys}


def test_cli_export_and_http_export_hold_the_same_slice(
        client: TestClient, auditor: dict[str, str], run: Any, tmp_path: Path,
        public_key: Path) -> None:
    out = tmp_path / "d1.jsonl"
    exported = run("export", "--object-type", "door", "--object-id", "d1", "--out", str(out))
    assert exported.exit_code == 0, exported.output
    assert exported.stdout == f"{out}\n"
    assert "exported 3 selected and 2 proof events" in exported.stderr
    assert not out.with_name("d1.jsonl.partial").exists()
    answer = client.get("/audit/export", params={"object_type": "door", "object_id": "d1"},
                        headers=auditor)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("application/jsonl")
    assert answer.headers["content-disposition"].startswith('attachment; filename="audit-slice-')
    from_cli, from_http = out.read_bytes(), answer.content
    assert shape(from_http) == [("d1", "door.open", "selected"), ("d2", "door.open", "proof"),
                                ("d1", "door.close", "selected"),
                                ("d1", "door.open", "selected"), ("d3", "door.close", "proof")]
    # Event lines byte for byte; header and trailer differ only by when each was generated
    # (the CLI runs on the wall clock, the app on the test clock) and what that changes.
    assert from_cli.splitlines()[1:-1] == from_http.splitlines()[1:-1]
    cli_lines, http_lines = parse(from_cli), parse(from_http)
    assert _without(cli_lines[0], "generated_at") == _without(http_lines[0], "generated_at")
    assert http_lines[0]["generated_at"] == "2026-01-15T11:00:00+00:00"
    assert _without(cli_lines[-1], "header_sha256", "signature") == \
        _without(http_lines[-1], "header_sha256", "signature")
    http_file = tmp_path / "http.jsonl"
    http_file.write_bytes(from_http)
    for file in (out, http_file):
        verified = run("verify-slice", str(file), "--public-key", str(public_key))
        assert verified.exit_code == 0, verified.output
        assert verified.stdout.startswith("audit slice verified: filtered, 5 events "
                                          "(3 selected, 2 proof), seq ")
        assert "filters object_type=door, object_id=d1" in verified.stdout


def test_http_time_slice_verifies_with_the_published_key(
        client: TestClient, auditor: dict[str, str], run: Any, tmp_path: Path) -> None:
    answer = client.get("/audit/export", headers=auditor, params={
        "from": (START + timedelta(minutes=15)).isoformat(),
        "to": (START + timedelta(minutes=65)).isoformat()})
    assert answer.status_code == 200, answer.text
    assert shape(answer.content) == [("d2", "door.close", "selected"),
                                     ("d3", "door.open", "proof"),
                                     ("d9", "door.open", "selected")]
    key = client.get("/reports/public-key", headers=auditor)
    assert key.status_code == 200
    (tmp_path / "key.pem").write_text(key.text)
    (tmp_path / "slice.jsonl").write_bytes(answer.content)
    verified = run("verify-slice", str(tmp_path / "slice.jsonl"), "--public-key",
                   str(tmp_path / "key.pem"))
    assert verified.exit_code == 0, verified.output
    assert "contiguous, 3 events" in verified.stdout


def test_verify_slice_exits_1_naming_the_first_problem(
        auditor: dict[str, str], run: Any, tmp_path: Path, public_key: Path) -> None:
    out = tmp_path / "all.jsonl"
    assert run("export", "--action", "door.open", "--out", str(out)).exit_code == 0
    lines = parse(out.read_bytes())
    victim = lines[2]
    victim["record"]["context"]["site"] = "south"
    out.write_bytes(b"".join(encode_line(o) for o in lines))
    failed = run("verify-slice", str(out), "--public-key", str(public_key))
    assert failed.exit_code == 1
    seq = victim["record"]["seq"]
    assert failed.stdout.startswith(
        f"audit slice NOT verified (2 problems); first: line 3 seq={seq} [hash_mismatch]: "
        "the event's content does not match its hash")
    assert "[events_altered]" in failed.stdout
    report = run("verify-slice", str(out), "--public-key", str(public_key), "--json")
    assert report.exit_code == 1
    assert [p["kind"] for p in json.loads(report.stdout)["problems"]] == [
        "hash_mismatch", "events_altered"]


def test_verify_slice_with_another_key_or_no_file_exits_1_or_2(
        auditor: dict[str, str], run: Any, tmp_path: Path) -> None:
    out = tmp_path / "d2.jsonl"
    assert run("export", "--object-id", "d2", "--out", str(out)).exit_code == 0
    other = tmp_path / "other.pub"
    other.write_text(public_pem(generate_signer().public_key))
    wrong_key = run("verify-slice", str(out), "--public-key", str(other))
    assert wrong_key.exit_code == 1
    assert "[unknown_key]" in wrong_key.stdout
    missing = run("verify-slice", str(tmp_path / "nothing.jsonl"), "--public-key", str(other))
    assert missing.exit_code == 2
    assert "cannot read the slice" in missing.stderr


def test_export_refuses_bad_filters_with_exit_2(
        auditor: dict[str, str], run: Any, tmp_path: Path) -> None:
    out = tmp_path / "x.jsonl"
    naive = run("export", "--from", "2026-01-15T09:00:00", "--out", str(out))
    assert naive.exit_code == 2
    assert "invalid filters for the audit slice" in naive.stderr
    assert "from: " in naive.stderr
    backwards = run("export", "--from", "2026-01-15T10:00:00+00:00",
                    "--to", "2026-01-15T09:00:00+00:00", "--out", str(out))
    assert backwards.exit_code == 2
    assert "'to' must be later than 'from'" in backwards.stderr
    assert not out.exists()


def test_auditor_and_administrator_may_export_requester_may_not(
        client: TestClient, auditor: dict[str, str], admin_headers: dict[str, str],
        session_factory: sessionmaker[Session], clock: FixedClock) -> None:
    assert client.get("/audit/export", params={"object_id": "d1"},
                      headers=admin_headers).status_code == 200
    requester = {"Authorization": "Bearer " + make_token(session_factory, clock, "req",
                                                         ["requester"])}
    refused = client.get("/audit/export", headers=requester)
    assert refused.status_code == 403
    assert refused.headers["content-type"].startswith("application/problem+json")


@pytest.mark.parametrize("params", [
    {"from": "2026-01-15T10:00:00+00:00", "to": "2026-01-15T09:00:00+00:00"},
    {"from": "yesterday"},
    {"colour": "blue"},
])
def test_http_export_refuses_bad_filters_with_422(
        client: TestClient, auditor: dict[str, str], params: dict[str, str]) -> None:
    answer = client.get("/audit/export", params=params, headers=auditor)
    assert answer.status_code == 422
    assert answer.headers["content-type"].startswith("application/problem+json")
