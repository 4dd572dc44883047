"""`idgov init`: migrate, keys, and a bootstrap admin token that a second run keeps."""

from __future__ import annotations

import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from idgov.clock import FixedClock
from idgov.config import Settings
from idgov.db.session import make_engine
from idgov.main import create_app
from idgov.models import ApiToken, AuditEvent, ServicePrincipal
from idgov.setup.init import run_init
from tests.setup.conftest import RunCli


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _counts(settings: Settings) -> tuple[int, int, int]:
    engine = make_engine(settings.resolved_database_url)
    try:
        with engine.connect() as conn:
            return (conn.scalar(select(func.count()).select_from(ServicePrincipal)) or 0,
                    conn.scalar(select(func.count()).select_from(ApiToken)) or 0,
                    conn.scalar(select(func.count()).select_from(AuditEvent)) or 0)
    finally:
        engine.dispose()


def _status_with_token(settings: Settings, token: str) -> int:
    engine = make_engine(settings.resolved_database_url)
    try:
        with TestClient(create_app(settings, engine=engine)) as client:
            headers = {"Authorization": f"Bearer {token}"}
            return client.get("/identities", headers=headers).status_code
    finally:
        engine.dispose()


def test_init_twice_keeps_the_token_and_changes_nothing(var_dir: Path, run_cli: RunCli) -> None:
    first = run_cli("init")
    settings = Settings()
    token_path = var_dir / "admin-token"
    token = token_path.read_text().strip()
    assert token.startswith("idg_")
    before = _counts(settings)
    key_pem = (var_dir / "audit-signing.key").read_bytes()
    secret = (var_dir / "secret.key").read_bytes()

    second = run_cli("init")

    assert token_path.read_text().strip() == token
    assert (var_dir / "audit-signing.key").read_bytes() == key_pem
    assert (var_dir / "secret.key").read_bytes() == secret
    assert _counts(settings) == before == (1, 1, 2)
    assert "(0600, new)" in first.output
    assert "kept, still valid" in second.output
    assert token not in first.output + second.output


def test_init_makes_secrets_readable_by_the_owner_only(var_dir: Path, run_cli: RunCli) -> None:
    run_cli("init")
    for name in ("admin-token", "audit-signing.key", "secret.key"):
        assert _mode(var_dir / name) == 0o600, name
    assert (var_dir / "idgov.db").exists()
    assert (var_dir / "audit-signing.pub").read_text().startswith("-----BEGIN PUBLIC KEY-----")


def test_init_token_authenticates_as_administrator(var_dir: Path, run_cli: RunCli) -> None:
    run_cli("init")
    token = (var_dir / "admin-token").read_text().strip()
    assert _status_with_token(Settings(), token) == 200
    assert _status_with_token(Settings(), token[:-2] + "xx") == 401


def test_init_prints_where_the_token_is_the_urls_and_a_curl_example(
        var_dir: Path, run_cli: RunCli) -> None:
    out = run_cli("init").output
    assert str(var_dir / "admin-token") in out
    for url in ("http://127.0.0.1:8000/docs", "http://127.0.0.1:8000/openapi.json",
                "http://127.0.0.1:8000/healthz"):
        assert url in out
    assert f'curl -H "Authorization: Bearer $(cat {var_dir / "admin-token"})"' in out


def test_init_replaces_an_expired_or_foreign_token(var_dir: Path, run_cli: RunCli) -> None:
    run_cli("init")
    token_path = var_dir / "admin-token"
    old = token_path.read_text().strip()
    settings = Settings()
    later = FixedClock(datetime.now(UTC) + timedelta(days=settings.api_token_default_days + 1))
    result = run_init(settings, clock=later)
    assert result.token_created
    assert token_path.read_text().strip() != old
    assert _mode(token_path) == 0o600

    token_path.write_text("idg_notmine_garbage\n")
    assert run_init(settings).token_created
    assert _status_with_token(settings, token_path.read_text().strip()) == 200


def test_init_uses_the_configured_database(var_dir: Path, run_cli: RunCli, db_url: str,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IDGOV_DATABASE_URL", db_url)
    run_cli("init")
    run_cli("init")
    assert not (var_dir / "idgov.db").exists()
    assert _counts(Settings()) == (1, 1, 2)
