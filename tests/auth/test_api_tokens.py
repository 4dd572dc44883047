"""API tokens: issuing, refusing (expired, revoked, wrong secret, disabled), never leaking."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from idgov.auth import tokens
from idgov.clock import FixedClock
from idgov.db.session import unit_of_work
from idgov.models.audit import AuditEvent
from idgov.models.auth import ApiToken
from tests.auth.conftest import bearer


def _principal(client: TestClient, admin: dict[str, str], name: str = "hr-feed",
               roles: list[str] | None = None) -> dict[str, Any]:
    resp = client.post("/service-principals", headers=admin,
                       json={"name": name, "roles": roles or ["hr-system"]})
    assert resp.status_code == 201, resp.text
    body: dict[str, Any] = resp.json()
    return body


def _token(client: TestClient, admin: dict[str, str], principal_id: str,
           **extra: Any) -> dict[str, Any]:
    resp = client.post("/tokens", headers=admin,
                       json={"principal_id": principal_id, "name": "feed", **extra})
    assert resp.status_code == 201, resp.text
    body: dict[str, Any] = resp.json()
    return body


def test_created_token_authenticates_with_its_roles(client: TestClient,
                                                    admin_headers: dict[str, str],
                                                    clock: FixedClock) -> None:
    principal = _principal(client, admin_headers)
    created = _token(client, admin_headers, principal["id"])
    assert created["token"].startswith(f"idg_{created['prefix']}_")
    assert created["roles"] == ["hr-system"]
    assert created["expires_at"] == (clock.now() + timedelta(days=90)).isoformat().replace(
        "+00:00", "Z")
    me = client.get("/me", headers=bearer(created["token"])).json()
    assert me == {"kind": "token", "name": "hr-feed", "identity": None,
                  "principal_id": principal["id"], "roles": ["hr-system"],
                  "capabilities": sorted(me["capabilities"])}
    assert "identities:write" in me["capabilities"]


def test_expired_token_is_401(client: TestClient, admin_headers: dict[str, str],
                              clock: FixedClock) -> None:
    created = _token(client, admin_headers, _principal(client, admin_headers)["id"],
                     expires_in_days=1)
    clock.advance(timedelta(days=1) - timedelta(seconds=1))
    assert client.get("/me", headers=bearer(created["token"])).status_code == 200
    clock.advance(timedelta(seconds=1))
    resp = client.get("/me", headers=bearer(created["token"]))
    assert resp.status_code == 401
    assert resp.json()["detail"] == "the bearer token is expired or revoked"


def test_revoked_token_is_401_and_revoking_again_is_409(client: TestClient,
                                                        admin_headers: dict[str, str],
                                                        clock: FixedClock) -> None:
    created = _token(client, admin_headers, _principal(client, admin_headers)["id"])
    revoked = client.post(f"/tokens/{created['id']}/revoke", headers=admin_headers)
    assert revoked.status_code == 200
    assert revoked.json()["revoked_at"] is not None
    assert client.get("/me", headers=bearer(created["token"])).status_code == 401
    again = client.post(f"/tokens/{created['id']}/revoke", headers=admin_headers)
    assert again.status_code == 409


def test_wrong_secret_with_a_right_prefix_is_401(client: TestClient,
                                                 admin_headers: dict[str, str]) -> None:
    created = _token(client, admin_headers, _principal(client, admin_headers)["id"])
    forged = f"idg_{created['prefix']}_{'A' * 43}"
    resp = client.get("/me", headers=bearer(forged))
    assert resp.status_code == 401
    assert resp.json()["detail"] == "the bearer token is not valid"


def test_disabled_principal_tokens_are_401_until_enabled(client: TestClient,
                                                         admin_headers: dict[str, str]) -> None:
    principal = _principal(client, admin_headers)
    created = _token(client, admin_headers, principal["id"])
    url = f"/service-principals/{principal['id']}"
    assert client.patch(url, headers=admin_headers, json={"disabled": True}).status_code == 200
    assert client.get("/me", headers=bearer(created["token"])).status_code == 401
    refused = client.post("/tokens", headers=admin_headers,
                          json={"principal_id": principal["id"], "name": "another"})
    assert refused.status_code == 422
    assert client.patch(url, headers=admin_headers, json={"disabled": False}).status_code == 200
    assert client.get("/me", headers=bearer(created["token"])).status_code == 200


def test_lowering_a_principals_roles_lowers_its_tokens(client: TestClient,
                                                       admin_headers: dict[str, str]) -> None:
    principal = _principal(client, admin_headers, roles=["hr-system", "auditor"])
    created = _token(client, admin_headers, principal["id"])
    assert created["roles"] == ["auditor", "hr-system"]
    client.patch(f"/service-principals/{principal['id']}", headers=admin_headers,
                 json={"roles": ["auditor"]})
    assert client.get("/me", headers=bearer(created["token"])).json()["roles"] == ["auditor"]


def test_token_cannot_carry_roles_its_principal_lacks(client: TestClient,
                                                      admin_headers: dict[str, str]) -> None:
    principal = _principal(client, admin_headers)
    resp = client.post("/tokens", headers=admin_headers,
                       json={"principal_id": principal["id"], "name": "x",
                             "roles": ["administrator"]})
    assert resp.status_code == 422
    assert resp.json()["errors"][0]["field"] == "roles"


def test_lifetime_is_at_most_366_days(client: TestClient, admin_headers: dict[str, str]) -> None:
    principal = _principal(client, admin_headers)
    resp = client.post("/tokens", headers=admin_headers,
                       json={"principal_id": principal["id"], "name": "x",
                             "expires_in_days": 367})
    assert resp.status_code == 422
    assert resp.json()["errors"][0]["field"] == "expires_in_days"


def test_last_used_is_written_at_most_once_a_minute(client: TestClient,
                                                    admin_headers: dict[str, str],
                                                    clock: FixedClock) -> None:
    created = _token(client, admin_headers, _principal(client, admin_headers)["id"])
    first = clock.now()

    def last_used() -> str | None:
        value: str | None = client.get(f"/tokens/{created['id']}",
                                       headers=admin_headers).json()["last_used_at"]
        return value

    assert last_used() is None
    client.get("/me", headers=bearer(created["token"]))
    assert last_used() == first.isoformat().replace("+00:00", "Z")
    clock.advance(timedelta(seconds=59))
    client.get("/me", headers=bearer(created["token"]))
    assert last_used() == first.isoformat().replace("+00:00", "Z")
    clock.advance(timedelta(seconds=1))
    client.get("/me", headers=bearer(created["token"]))
    assert last_used() == clock.now().isoformat().replace("+00:00", "Z")


def test_token_text_and_hash_appear_in_no_response_and_no_audit_event(
        client: TestClient, admin_headers: dict[str, str],
        session_factory: sessionmaker[Session]) -> None:
    principal = _principal(client, admin_headers)
    created = _token(client, admin_headers, principal["id"])
    text = created["token"]
    secret = tokens.split_token(text)
    assert secret is not None
    client.get("/me", headers=bearer(text))
    responses = [
        client.get("/tokens", headers=admin_headers),
        client.get(f"/tokens/{created['id']}", headers=admin_headers),
        client.get("/service-principals", headers=admin_headers),
        client.get(f"/service-principals/{principal['id']}", headers=admin_headers),
        client.post(f"/tokens/{created['id']}/revoke", headers=admin_headers),
        client.get("/me", headers=bearer(text)),
    ]
    with unit_of_work(session_factory) as session:
        digest = session.scalars(select(ApiToken.secret_hash)
                                 .where(ApiToken.id == uuid.UUID(created["id"]))).one()
        events = list(session.scalars(select(AuditEvent)))
    assert {e.action for e in events} >= {"service_principal.create", "api_token.create",
                                          "api_token.revoke"}
    trail = json.dumps([[e.before, e.after, e.context, e.actor_name] for e in events])
    for needle in (text, secret.secret, digest):
        assert needle not in trail
        for resp in responses:
            assert needle not in resp.text
    listed = responses[0].json()["items"]
    assert listed and all("token" not in item and "secret_hash" not in item
                          for item in listed)


def test_tokens_list_filters_usable_ones(client: TestClient, admin_headers: dict[str, str]
                                         ) -> None:
    principal = _principal(client, admin_headers)
    keep = _token(client, admin_headers, principal["id"])
    drop = _token(client, admin_headers, principal["id"])
    client.post(f"/tokens/{drop['id']}/revoke", headers=admin_headers)
    usable = client.get("/tokens", headers=admin_headers,
                        params={"usable": True, "principal_id": principal["id"]}).json()
    spent = client.get("/tokens", headers=admin_headers,
                       params={"usable": False, "principal_id": principal["id"]}).json()
    assert [t["id"] for t in usable["items"]] == [keep["id"]]
    assert [t["id"] for t in spent["items"]] == [drop["id"]]
