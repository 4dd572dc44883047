"""Health and readiness: a load balancer's view of the process."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from idgov.audit.signing import generate_signer
from idgov.config import Settings
from idgov.db.session import make_engine
from idgov.main import create_app


def test_ready_when_the_database_answers(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json() == {"status": "ready"}


def test_not_ready_when_the_database_does_not_answer(tmp_path: Path) -> None:
    dead = make_engine("postgresql+psycopg://nobody@127.0.0.1:1/none",
                       connect_args={"connect_timeout": 1})
    app = create_app(Settings(var_dir=tmp_path), engine=dead, signer=generate_signer())
    with TestClient(app, raise_server_exceptions=False) as client:
        assert client.get("/healthz").status_code == 200
        resp = client.get("/readyz")
    assert resp.status_code == 503
    assert resp.headers["content-type"].startswith("application/problem+json")
