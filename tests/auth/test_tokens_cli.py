"""``idgov tokens create|list|revoke`` against a migrated database and a real signing key."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from idgov.audit.signing import ensure_keys
from idgov.cli import app as idgov_app
from idgov.config import Settings
from tests.auth.conftest import bearer


@pytest.fixture
def cli_env(tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Settings for the CLI process: the test database and an audit key in a tmp var dir."""
    var = tmp_path / "cli-var"
    monkeypatch.setenv("IDGOV_VAR_DIR", str(var))
    monkeypatch.setenv("IDGOV_DATABASE_URL", db_url)
    settings = Settings()
    ensure_keys(settings.signing_key_path, settings.public_key_path)
    return settings


def _run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(idgov_app, ["tokens", *args])
    return result.exit_code, result.stdout, result.stderr


def test_create_prints_the_token_once_and_it_works(cli_env: Settings,
                                                   client: TestClient) -> None:
    code, out, err = _run("create", "--name", "siem", "--role", "auditor",
                          "--expires-in-days", "30")
    assert code == 0, err
    token = out.strip()
    assert token.startswith("idg_") and "\n" not in token
    assert token not in err and "created token" in err
    me = client.get("/me", headers=bearer(token)).json()
    assert (me["name"], me["roles"]) == ("siem", ["auditor"])


def test_create_reuses_a_named_principal_and_refuses_roles_it_lacks(cli_env: Settings) -> None:
    assert _run("create", "--name", "a", "--role", "hr-system", "--principal", "hr")[0] == 0
    assert _run("create", "--name", "b", "--role", "hr-system", "--principal", "hr")[0] == 0
    code, out, err = _run("create", "--name", "c", "--role", "administrator",
                          "--principal", "hr")
    assert code == 1
    assert out == ""
    assert "a token cannot carry roles its principal does not hold" in err


def test_create_refuses_an_unknown_role(cli_env: Settings) -> None:
    code, out, err = _run("create", "--name", "x", "--role", "root")
    assert code == 1
    assert out == ""
    assert "unknown service role" in err


def test_list_shows_tokens_without_secrets(cli_env: Settings) -> None:
    _code, token, _err = _run("create", "--name", "siem", "--role", "auditor")
    prefix = token.strip().split("_")[1]
    code, out, _err = _run("list")
    assert code == 0
    assert prefix in out and "siem" in out and "active" in out
    assert token.strip().split("_", 2)[2] not in out


def test_revoke_by_prefix_stops_the_token(cli_env: Settings, client: TestClient) -> None:
    _code, out, _err = _run("create", "--name", "siem", "--role", "auditor")
    token = out.strip()
    code, _out, err = _run("revoke", token.split("_")[1])
    assert code == 0, err
    assert "revoked token" in err
    assert client.get("/me", headers=bearer(token)).status_code == 401
    assert "revoked" in _run("list")[1]
    code, _out, err = _run("revoke", token.split("_")[1])
    assert code == 1
    assert "already revoked" in err


def test_revoke_unknown_token_fails(cli_env: Settings) -> None:
    code, _out, err = _run("revoke", "nosuchprefix")
    assert code == 1
    assert "no API token has this id or prefix" in err


def test_missing_signing_key_says_to_run_init(cli_env: Settings) -> None:
    cli_env.signing_key_path.unlink()
    code, _out, err = _run("list")
    assert code == 1
    assert "idgov init" in err
