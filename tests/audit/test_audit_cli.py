"""``idgov audit verify`` and ``idgov audit export-key`` against real databases."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from idgov.audit.service import install_sealer
from idgov.audit.signing import Signer, ensure_keys, generate_signer, public_pem
from idgov.cli import app
from idgov.clock import FixedClock
from idgov.db.session import make_session_factory
from tests.audit.chain import chain_rows, sql, write_chain


@pytest.fixture
def var_dir(tmp_path: Path) -> Path:
    return tmp_path / "var"


@pytest.fixture
def run(var_dir: Path) -> Any:
    runner = CliRunner()

    def invoke(*args: str, **env: str) -> Any:
        return runner.invoke(app, ["audit", *args],
                             env={"IDGOV_VAR_DIR": str(var_dir), "IDGOV_DATABASE_URL": "",
                                  **env})
    return invoke


def _pem_file(folder: Path, signer: Signer, name: str = "audit.pub") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(public_pem(signer.public_key))
    return path


@pytest.fixture
def chain(engine: Engine, session_factory: sessionmaker[Session], clock: FixedClock) -> list[Any]:
    write_chain(session_factory, clock, transactions=3, events_per_transaction=3)
    return chain_rows(engine)


def test_verify_intact_chain_exits_0_with_a_summary(run: Any, db_url: str, chain: list[Any],
                                                    signer: Signer, tmp_path: Path) -> None:
    result = run("verify", "--database-url", db_url, "--public-key",
                 str(_pem_file(tmp_path, signer)))
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("audit chain intact: 9 events, 3 signed blocks")
    assert chain[-1].hash in result.stdout


def test_verify_tampered_chain_exits_1_naming_the_first_bad_event(
        run: Any, db_url: str, engine: Engine, chain: list[Any], signer: Signer,
        tmp_path: Path) -> None:
    sql(engine, "DELETE FROM audit_events WHERE seq = 4")
    result = run("verify", "--database-url", db_url, "--public-key",
                 str(_pem_file(tmp_path, signer)))
    assert result.exit_code == 1
    victim = uuid.UUID(str(chain[4].id))
    assert f"first bad event: seq=5 id={victim} [seq_gap]: seq 4 missing" in result.stdout


def test_verify_defaults_to_the_configured_database_and_public_key(
        run: Any, db_url: str, chain: list[Any], signer: Signer, var_dir: Path) -> None:
    _pem_file(var_dir, signer, "audit-signing.pub")
    result = run("verify", IDGOV_DATABASE_URL=db_url)
    assert result.exit_code == 0, result.output
    assert "intact" in result.stdout


def test_verify_takes_every_rotated_key(run: Any, db_url: str, engine: Engine,
                                        session_factory: sessionmaker[Session],
                                        signer: Signer, clock: FixedClock,
                                        tmp_path: Path) -> None:
    write_chain(session_factory, clock, transactions=1, events_per_transaction=2)
    new_signer = generate_signer()
    rotated = make_session_factory(engine)
    install_sealer(rotated, new_signer)
    write_chain(rotated, clock, transactions=1, events_per_transaction=2)
    old_pem, new_pem = _pem_file(tmp_path, signer, "old.pub"), _pem_file(tmp_path, new_signer)
    both = run("verify", "--database-url", db_url, "--public-key", str(old_pem),
               "--public-key", str(new_pem), "--json")
    assert both.exit_code == 0, both.output
    report = json.loads(both.stdout)
    assert report["ok"] is True
    assert report["signatures_by_key"] == {signer.key_id: 1, new_signer.key_id: 1}
    one = run("verify", "--database-url", db_url, "--public-key", str(old_pem))
    assert one.exit_code == 1
    assert "seq=4" in one.stdout and "unknown_key" in one.stdout


def test_verify_without_a_key_or_database_exits_2(run: Any, db_url: str, chain: list[Any],
                                                  tmp_path: Path) -> None:
    no_key = run("verify", "--database-url", db_url)
    assert no_key.exit_code == 2
    assert "no public key" in no_key.stderr
    missing_db = run("verify", "--database-url", f"sqlite:///{tmp_path}/nothing.db",
                     "--public-key", str(_pem_file(tmp_path, generate_signer())))
    assert missing_db.exit_code == 2
    assert not (tmp_path / "nothing.db").exists()


def test_export_key_prints_the_public_key_or_derives_it(run: Any, var_dir: Path) -> None:
    ensure_keys(var_dir / "audit-signing.key", var_dir / "audit-signing.pub")
    pem = (var_dir / "audit-signing.pub").read_text()
    from_file = run("export-key")
    assert from_file.exit_code == 0
    assert from_file.stdout == pem
    (var_dir / "audit-signing.pub").unlink()
    derived = run("export-key")
    assert derived.exit_code == 0
    assert derived.stdout == pem
    assert "PRIVATE" not in derived.output


def test_export_key_without_keys_exits_2(run: Any) -> None:
    result = run("export-key")
    assert result.exit_code == 2
    assert "run idgov init" in result.stderr


def test_console_script_verifies_in_its_own_process(
        db_url: str, engine: Engine, chain: list[Any], signer: Signer, tmp_path: Path) -> None:
    idgov = Path(sys.executable).parent / "idgov"
    env = dict(os.environ, IDGOV_VAR_DIR=str(tmp_path / "var"))
    args = [str(idgov), "audit", "verify", "--database-url", db_url,
            "--public-key", str(_pem_file(tmp_path, signer))]
    intact = subprocess.run(args, env=env, capture_output=True, text=True, timeout=120,
                            check=False)
    assert intact.returncode == 0, intact.stderr
    assert "audit chain intact: 9 events" in intact.stdout
    sql(engine, "UPDATE audit_events SET actor_name = 'someone else' WHERE seq = 2")
    broken = subprocess.run(args, env=env, capture_output=True, text=True, timeout=120,
                            check=False)
    assert broken.returncode == 1
    assert f"first bad event: seq=2 id={uuid.UUID(str(chain[1].id))} [hash_mismatch]" \
        in broken.stdout
