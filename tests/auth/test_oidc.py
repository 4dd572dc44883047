"""OIDC bearer JWTs, validated against a JWKS served over real HTTP, linked to identities."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from joserfc.jwk import ECKey, RSAKey
from sqlalchemy.orm import Session, sessionmaker

from idgov.auth.oidc import OidcAuthenticator, OidcConfig, allowed_algorithms
from idgov.clock import FixedClock
from idgov.db.session import unit_of_work
from idgov.errors import Unauthenticated
from idgov.models.auth import ServiceRoleGrant
from tests.auth.conftest import (
    Issuer,
    add_person,
    bearer,
    claims_for,
    oidc_settings,
    sign,
)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unsigned(header: dict[str, Any], claims: dict[str, Any]) -> str:
    return _b64(json.dumps(header).encode()) + "." + _b64(json.dumps(claims).encode())


def test_good_rsa_token_is_linked_to_the_identity_by_email_case_insensitively(
        oidc_client: TestClient, issuer: Issuer, rsa_key: RSAKey, clock: FixedClock,
        session_factory: sessionmaker[Session]) -> None:
    ada = add_person(session_factory, "E1", email="Ada@Example.com")
    token = sign(rsa_key, claims_for(issuer, clock, email="ada@EXAMPLE.com"))
    resp = oidc_client.get("/me", headers=bearer(token))
    assert resp.status_code == 200, resp.text
    me = resp.json()
    assert me["kind"] == "oidc"
    assert me["identity"]["id"] == str(ada)
    assert me["identity"]["employee_id"] == "E1"
    assert me["roles"] == ["requester"]
    assert "me:read" in me["capabilities"]
    assert "tokens:write" not in me["capabilities"]


def test_good_ec_token_is_accepted_and_keys_come_from_discovery_once(
        oidc_client: TestClient, issuer: Issuer, ec_key: ECKey, clock: FixedClock,
        session_factory: sessionmaker[Session]) -> None:
    add_person(session_factory, "E1", email="ada@example.com")
    token = sign(ec_key, claims_for(issuer, clock), alg="ES256")
    for _ in range(3):
        assert oidc_client.get("/me", headers=bearer(token)).status_code == 200
    assert issuer.hits == {"/.well-known/openid-configuration": 1, "/jwks.json": 1}


def test_derived_and_granted_roles_reach_the_oidc_caller(
        oidc_client: TestClient, issuer: Issuer, rsa_key: RSAKey, clock: FixedClock,
        session_factory: sessionmaker[Session]) -> None:
    boss = add_person(session_factory, "B1", email="ada@example.com")
    add_person(session_factory, "R1", email="report@example.com", manager_id=boss)
    with unit_of_work(session_factory) as session:
        session.add(ServiceRoleGrant(identity_id=boss, role="auditor"))
    me = oidc_client.get("/me", headers=bearer(sign(rsa_key, claims_for(issuer, clock)))).json()
    assert me["roles"] == ["auditor", "manager", "requester"]
    assert "audit:read" in me["capabilities"]


def test_employee_id_claim_links_to_the_hr_key_when_configured(
        tmp_path: Path, issuer: Issuer, rsa_key: RSAKey, clock: FixedClock,
        session_factory: sessionmaker[Session]) -> None:
    ada = add_person(session_factory, "E-77", email="ada@example.com")
    config = OidcConfig.from_settings(oidc_settings(tmp_path, issuer,
                                                    oidc_identity_claim="employee_id"))
    resolver = OidcAuthenticator(config, clock=clock)
    token = sign(rsa_key, claims_for(issuer, clock, email=None, employee_id="E-77"))
    with unit_of_work(session_factory) as session:
        caller = resolver(session, token)
    assert caller.identity_id == ada
    assert caller.kind == "oidc"


def _refusals(issuer: Issuer, clock: FixedClock, rsa_key: RSAKey,
              other: RSAKey) -> dict[str, tuple[str, str]]:
    """name -> (token, the detail it must be refused with)."""
    now = int(clock.now().timestamp())
    good = claims_for(issuer, clock)
    public_pem = rsa_key.as_pem(private=False)
    hs_input = _unsigned({"alg": "HS256", "kid": rsa_key.kid, "typ": "JWT"}, good)
    hs_sig = hmac.new(public_pem, hs_input.encode(), hashlib.sha256).digest()
    return {
        "wrong issuer": (sign(rsa_key, claims_for(issuer, clock, iss="https://evil.example")),
                         "the token was not issued by the trusted issuer"),
        "wrong audience": (sign(rsa_key, claims_for(issuer, clock, aud="another-api")),
                           "the token was not issued for this service"),
        "expired": (sign(rsa_key, claims_for(issuer, clock, iat=now - 3600, nbf=now - 3600,
                                             exp=now - 31)),
                    "the token has expired"),
        "not yet valid": (sign(rsa_key, claims_for(issuer, clock, nbf=now + 31)),
                          "the token is not valid yet"),
        "issued in the future": (sign(rsa_key, claims_for(issuer, clock, iat=now + 31)),
                                 "the token was issued in the future"),
        "no exp": (sign(rsa_key, claims_for(issuer, clock, exp=None)),
                   "the token lacks the claims exp"),
        "unknown kid": (sign(other, good),
                        "the token is signed with a key the issuer does not publish"),
        "alg none": (_unsigned({"alg": "none", "kid": rsa_key.kid}, good) + ".",
                     "the token's signing algorithm 'none' is not accepted"),
        "HS256 with the public key as secret": (hs_input + "." + _b64(hs_sig),
                                                "the token's signing algorithm 'HS256' is "
                                                "not accepted"),
        "bad signature": (sign(other, good, kid=rsa_key.kid), "the token signature is not valid"),
        "not a JWT": ("not.a.jwt", "the bearer token is not valid"),
    }


REFUSALS = ["wrong issuer", "wrong audience", "expired", "not yet valid",
            "issued in the future", "no exp", "unknown kid", "alg none",
            "HS256 with the public key as secret", "bad signature", "not a JWT"]


@pytest.mark.parametrize("case", REFUSALS)
def test_invalid_token_is_401_with_the_reason(
        case: str, oidc_client: TestClient, issuer: Issuer, rsa_key: RSAKey,
        other_rsa_key: RSAKey, clock: FixedClock,
        session_factory: sessionmaker[Session]) -> None:
    add_person(session_factory, "E1", email="ada@example.com")
    token, detail = _refusals(issuer, clock, rsa_key, other_rsa_key)[case]
    resp = oidc_client.get("/me", headers=bearer(token))
    assert resp.status_code == 401, resp.text
    assert resp.headers["www-authenticate"] == "Bearer"
    assert resp.json()["detail"] == detail


def test_leeway_accepts_a_token_expired_by_less_than_the_leeway(
        oidc_client: TestClient, issuer: Issuer, rsa_key: RSAKey, clock: FixedClock,
        session_factory: sessionmaker[Session]) -> None:
    add_person(session_factory, "E1", email="ada@example.com")
    token = sign(rsa_key, claims_for(issuer, clock))
    clock.advance(timedelta(seconds=300 + 29))
    assert oidc_client.get("/me", headers=bearer(token)).status_code == 200
    clock.advance(timedelta(seconds=2))
    assert oidc_client.get("/me", headers=bearer(token)).json()["detail"] == (
        "the token has expired")


def test_token_without_the_identity_claim_is_401(
        oidc_client: TestClient, issuer: Issuer, rsa_key: RSAKey, clock: FixedClock) -> None:
    resp = oidc_client.get("/me", headers=bearer(sign(rsa_key, claims_for(issuer, clock,
                                                                          email=None))))
    assert resp.status_code == 401
    assert resp.json()["detail"] == "the token carries no 'email' claim to identify the person"


@pytest.mark.parametrize("state", [None, "terminated", "suspended", "prehire"])
def test_unknown_or_inactive_identity_is_403_with_one_non_leaking_detail(
        state: str | None, oidc_client: TestClient, issuer: Issuer, rsa_key: RSAKey,
        clock: FixedClock, session_factory: sessionmaker[Session]) -> None:
    if state is not None:
        add_person(session_factory, "E1", email="ada@example.com", state=state)
    resp = oidc_client.get("/me", headers=bearer(sign(rsa_key, claims_for(issuer, clock))))
    assert resp.status_code == 403
    assert resp.json()["detail"] == "the signed-in person has no active identity in this service"


def test_rotated_key_is_fetched_once_on_an_unknown_kid(
        oidc_client: TestClient, issuer: Issuer, rsa_key: RSAKey, other_rsa_key: RSAKey,
        clock: FixedClock, session_factory: sessionmaker[Session]) -> None:
    add_person(session_factory, "E1", email="ada@example.com")
    assert oidc_client.get("/me", headers=bearer(sign(rsa_key, claims_for(issuer, clock)))
                           ).status_code == 200
    issuer.keys.append(other_rsa_key)  # the issuer rotates in a new key
    clock.advance(timedelta(seconds=31))  # past the refetch rate limit
    rotated = sign(other_rsa_key, claims_for(issuer, clock))
    assert oidc_client.get("/me", headers=bearer(rotated)).status_code == 200
    assert issuer.hits["/jwks.json"] == 2


def test_a_flood_of_unknown_kids_fetches_the_jwks_at_most_once_per_interval(
        oidc_client: TestClient, issuer: Issuer, rsa_key: RSAKey, other_rsa_key: RSAKey,
        clock: FixedClock, session_factory: sessionmaker[Session]) -> None:
    add_person(session_factory, "E1", email="ada@example.com")
    assert oidc_client.get("/me", headers=bearer(sign(rsa_key, claims_for(issuer, clock)))
                           ).status_code == 200
    clock.advance(timedelta(seconds=31))
    for n in range(20):
        forged = sign(other_rsa_key, claims_for(issuer, clock), kid=f"made-up-{n}")
        assert oidc_client.get("/me", headers=bearer(forged)).status_code == 401
    assert issuer.hits["/jwks.json"] == 2  # the first load and one refetch, not 21


def test_cached_keys_are_refetched_after_the_cache_lifetime(
        tmp_path: Path, issuer: Issuer, rsa_key: RSAKey, clock: FixedClock,
        session_factory: sessionmaker[Session]) -> None:
    add_person(session_factory, "E1", email="ada@example.com")
    settings = oidc_settings(tmp_path, issuer, oidc_jwks_url=f"{issuer.url}/jwks.json",
                             oidc_jwks_cache_seconds=120)
    resolver = OidcAuthenticator(OidcConfig.from_settings(settings), clock=clock)
    with unit_of_work(session_factory) as session:
        resolver(session, sign(rsa_key, claims_for(issuer, clock)))
        clock.advance(timedelta(seconds=119))
        resolver(session, sign(rsa_key, claims_for(issuer, clock)))
        assert issuer.hits == {"/jwks.json": 1}  # the configured URL: no discovery
        clock.advance(timedelta(seconds=1))
        resolver(session, sign(rsa_key, claims_for(issuer, clock)))
    assert issuer.hits == {"/jwks.json": 2}


def test_unreachable_issuer_is_401_without_a_server_error(
        tmp_path: Path, rsa_key: RSAKey, clock: FixedClock,
        session_factory: sessionmaker[Session]) -> None:
    gone = Issuer(url="http://127.0.0.1:9")  # the discard port: nothing listens
    resolver = OidcAuthenticator(OidcConfig.from_settings(oidc_settings(tmp_path, gone)),
                                 clock=clock)
    with unit_of_work(session_factory) as session, pytest.raises(Unauthenticated) as err:
        resolver(session, sign(rsa_key, claims_for(gone, clock)))
    assert "signing keys are unavailable" in err.value.detail


def test_hmac_and_none_algorithms_are_never_accepted_even_when_configured() -> None:
    assert allowed_algorithms(["HS256", "none", "RS256", "hs512"]) == ("RS256",)
    with pytest.raises(ValueError, match="no acceptable"):
        allowed_algorithms(["HS256"])


def test_an_issuer_without_an_audience_is_a_configuration_error(tmp_path: Path,
                                                                issuer: Issuer) -> None:
    with pytest.raises(ValueError, match="AUDIENCE"):
        OidcConfig.from_settings(oidc_settings(tmp_path, issuer, oidc_audience=None))


def test_without_an_issuer_jwts_are_refused(client: TestClient, issuer: Issuer,
                                            rsa_key: RSAKey, clock: FixedClock) -> None:
    resp = client.get("/me", headers=bearer(sign(rsa_key, claims_for(issuer, clock))))
    assert resp.status_code == 401
    assert issuer.hits == {}
