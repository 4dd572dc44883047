"""An OIDC issuer over real HTTP (discovery document and JWKS), signing keys, test people."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from joserfc import jwt
from joserfc.jwk import ECKey, Key, RSAKey
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from idgov.audit.signing import Signer
from idgov.clock import FixedClock
from idgov.config import Settings
from idgov.db.session import unit_of_work
from idgov.main import create_app
from idgov.models.identity import Identity

AUDIENCE = "idgov-api"


@dataclass
class Issuer:
    """What the fake issuer publishes, and how often it was asked."""

    url: str = ""
    keys: list[Key] = field(default_factory=list)
    hits: dict[str, int] = field(default_factory=dict)

    def jwks(self) -> dict[str, Any]:
        return {"keys": [k.as_dict(private=False) for k in self.keys]}

    def discovery(self) -> dict[str, Any]:
        return {"issuer": self.url, "jwks_uri": f"{self.url}/jwks.json",
                "id_token_signing_alg_values_supported": ["RS256", "ES256"]}


def _handler(issuer: Issuer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            routes = {"/jwks.json": issuer.jwks,
                      "/.well-known/openid-configuration": issuer.discovery,
                      "/ready": lambda: {"ok": True}}
            build = routes.get(self.path)
            if build is None:
                self.send_error(404)
                return
            issuer.hits[self.path] = issuer.hits.get(self.path, 0) + 1
            body = json.dumps(build()).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: the test output is not the place for access logs."""

    return Handler


@pytest.fixture(scope="session")
def rsa_key() -> RSAKey:
    return RSAKey.generate_key(2048, parameters={"kid": "rsa-1", "use": "sig"})


@pytest.fixture(scope="session")
def ec_key() -> ECKey:
    return ECKey.generate_key("P-256", parameters={"kid": "ec-1", "use": "sig"})


@pytest.fixture(scope="session")
def other_rsa_key() -> RSAKey:
    """A key the issuer does not publish (until a test rotates it in)."""
    return RSAKey.generate_key(2048, parameters={"kid": "rsa-2", "use": "sig"})


@pytest.fixture
def issuer(rsa_key: RSAKey, ec_key: ECKey) -> Iterator[Issuer]:
    """A discovery document and JWKS served over HTTP on a free 127.0.0.1 port."""
    state = Issuer(keys=[rsa_key, ec_key])
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    # A short poll interval makes shutdown() return quickly at teardown.
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02},
                              daemon=True)
    thread.start()
    try:
        # The socket listens already; one answered request proves the loop is serving.
        assert httpx.get(f"{state.url}/ready", timeout=5).status_code == 200
        state.hits.clear()
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def oidc_settings(tmp_path: Path, issuer: Issuer, **extra: Any) -> Settings:
    values: dict[str, Any] = {"var_dir": tmp_path / "var", "oidc_issuer": issuer.url,
                              "oidc_audience": AUDIENCE, "oidc_algorithms": ["RS256", "ES256"]}
    values.update(extra)
    return Settings(**values)


@pytest.fixture
def oidc_client(tmp_path: Path, issuer: Issuer, engine: Engine, clock: FixedClock,
                signer: Signer) -> Iterator[TestClient]:
    """The app, trusting ``issuer`` (keys found through its discovery document)."""
    app = create_app(oidc_settings(tmp_path, issuer), engine=engine, clock=clock, signer=signer)
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def sign(key: Key, claims: dict[str, Any], *, alg: str = "RS256",
         kid: str | None = None) -> str:
    header = {"alg": alg, "kid": kid or key.kid}
    return jwt.encode(header, claims, key, algorithms=[alg])


def claims_for(issuer: Issuer, clock: FixedClock, **overrides: Any) -> dict[str, Any]:
    now = int(clock.now().timestamp())
    claims: dict[str, Any] = {"iss": issuer.url, "aud": AUDIENCE, "sub": "user-1",
                              "email": "ada@example.com", "iat": now, "nbf": now,
                              "exp": now + 300}
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def add_person(factory: sessionmaker[Session], employee_id: str, *, email: str | None = None,
               manager_id: uuid.UUID | None = None, state: str = "active") -> uuid.UUID:
    """An identity in the database; returns its id."""
    with unit_of_work(factory) as session:
        person = Identity(employee_id=employee_id, given_name="Ada",
                          family_name=f"Person{employee_id}",
                          display_name=f"Ada Person{employee_id}",
                          email=email, manager_id=manager_id, lifecycle_state=state)
        session.add(person)
        session.flush()
        return person.id
