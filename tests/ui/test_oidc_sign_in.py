"""Sign-in through an OIDC issuer (authorization code + PKCE) served over real HTTP: the
access token is validated exactly as an API bearer token, and names the person."""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient
from joserfc import jwt
from joserfc.jwk import RSAKey
from sqlalchemy import Engine

from idgov.audit.signing import Signer
from idgov.clock import FixedClock
from idgov.config import Settings
from idgov.main import create_app
from idgov.models.identity import Identity
from tests.catalog.factories import add_identity

AUDIENCE = "idgov-api"


class Issuer:
    def __init__(self) -> None:
        self.key = RSAKey.generate_key(2048, parameters={"kid": "k1", "use": "sig"})
        self.url = ""
        self.email = ""
        self.now = 0
        self.token_posts: list[dict[str, list[str]]] = []

    def handler(self) -> type[BaseHTTPRequestHandler]:
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def _json(self, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                if self.path == "/.well-known/openid-configuration":
                    self._json({"issuer": issuer.url, "jwks_uri": f"{issuer.url}/jwks",
                                "authorization_endpoint": f"{issuer.url}/authorize",
                                "token_endpoint": f"{issuer.url}/token"})
                elif self.path == "/jwks":
                    self._json({"keys": [issuer.key.as_dict(private=False)]})
                else:
                    self.send_error(404)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                form = parse_qs(self.rfile.read(length).decode())
                issuer.token_posts.append(form)
                claims = {"iss": issuer.url, "aud": AUDIENCE, "email": issuer.email,
                          "iat": issuer.now, "exp": issuer.now + 300}
                token = jwt.encode({"alg": "RS256", "kid": "k1"}, claims, issuer.key)
                self._json({"access_token": token, "token_type": "Bearer",
                            "expires_in": 300})

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet."""

        return Handler


@pytest.fixture
def issuer() -> Iterator[Issuer]:
    found = Issuer()
    server = ThreadingHTTPServer(("127.0.0.1", 0), found.handler())
    found.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield found
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)


def test_a_person_signs_in_through_the_issuer_and_is_the_api_caller(
        issuer: Issuer, tmp_path: Path, engine: Engine, clock: FixedClock,
        signer: Signer) -> None:
    settings = Settings(var_dir=tmp_path / "var", oidc_issuer=issuer.url,
                          oidc_audience=AUDIENCE, oidc_client_id="idgov-web",
                          oidc_client_secret="s3cret")
    app = create_app(settings, engine=engine, clock=clock, signer=signer)
    assert app.state.ui_demo_sign_in is False  # an issuer is configured: no demo sign-in
    factory = app.state.ctx.session_factory
    person = add_identity(factory, "ADA")
    with factory() as session:
        row = session.get(Identity, uuid.UUID(person))
        assert row is not None
        issuer.email, name = str(row.email), row.display_name
    issuer.now = int(clock.now().timestamp())

    with TestClient(app) as client:
        page = client.get("/ui/sign-in")
        assert "Sign in with your organisation account" in page.text
        assert "Try a persona" not in page.text
        assert client.post("/ui/sign-in/demo", data={}).status_code == 403  # no CSRF token

        start = client.get("/ui/sign-in/oidc?next=/ui/requests", follow_redirects=False)
        assert start.status_code == 302
        location = urlsplit(start.headers["location"])
        query = parse_qs(location.query)
        assert f"{location.scheme}://{location.netloc}{location.path}" == f"{issuer.url}/authorize"
        assert (query["client_id"], query["response_type"], query["code_challenge_method"]) == (
            ["idgov-web"], ["code"], ["S256"])

        wrong = client.get("/ui/auth/callback?code=abc&state=forged")
        assert wrong.status_code == 401

        done = client.get(f"/ui/auth/callback?code=abc&state={query['state'][0]}",
                          follow_redirects=False)
        assert (done.status_code, done.headers["location"]) == (303, "/ui/requests")
        verifier = issuer.token_posts[-1]["code_verifier"][0]
        challenge = base64.urlsafe_b64encode(
            hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        assert challenge == query["code_challenge"][0]  # PKCE carried through
        home = client.get("/ui/")
        assert f'data-testid="signed-in-as">{name}<' in home.text
        replay = client.get(f"/ui/auth/callback?code=abc&state={query['state'][0]}")
        assert replay.status_code == 401  # a state is used once
