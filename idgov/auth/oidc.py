"""OIDC bearer JWTs: validate against the issuer's JWKS, link the caller to an identity.

JOSE is done with joserfc, the successor of ``authlib.jose`` by the same author: importing
``authlib.jose`` emits "authlib.jose module is deprecated, please use joserfc instead", which
pytest's warnings-as-errors turns into a failure. Keys come from the issuer's
JWKS, fetched with httpx and cached; a token signed with a key id the cache does not know
causes one refetch (a key rotation), at most once per ``refetch_seconds`` so that a flood of
made-up key ids cannot make this service hammer the issuer.

Only asymmetric algorithms are accepted: ``none`` and every HMAC algorithm (HS*) are refused
whatever the settings say, so a token "signed" with the issuer's public key as an HMAC secret
is never accepted.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
from joserfc import jws, jwt
from joserfc.errors import (
    BadSignatureError,
    ExpiredTokenError,
    InvalidClaimError,
    JoseError,
    MissingClaimError,
)
from joserfc.jwk import Key, KeySet
from sqlalchemy.orm import Session

from idgov.auth import repository
from idgov.auth.caller import Caller
from idgov.auth.roles import person_roles
from idgov.clock import Clock
from idgov.config import Settings
from idgov.errors import Forbidden, Unauthenticated

log = logging.getLogger(__name__)

NOT_VALID = "the bearer token is not valid"
NO_ACTIVE_IDENTITY = "the signed-in person has no active identity in this service"
_CLAIM_PROBLEMS = {
    "iss": "the token was not issued by the trusted issuer",
    "aud": "the token was not issued for this service",
    "nbf": "the token is not valid yet",
    "iat": "the token was issued in the future",
    "exp": "the token has expired",
}


def allowed_algorithms(configured: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """The configured algorithms without ``none`` and HMAC, which are never acceptable here."""
    kept = tuple(a for a in configured if a.lower() != "none" and not a.upper().startswith("HS"))
    dropped = sorted(set(configured) - set(kept))
    if dropped:
        log.warning("OIDC algorithms %s are never accepted and were ignored", dropped)
    if not kept:
        raise ValueError("no acceptable OIDC signing algorithm is configured")
    return kept


@dataclass(frozen=True)
class OidcConfig:
    """What the validator needs from the settings."""

    issuer: str
    audience: str
    jwks_url: str | None
    identity_claim: str = "email"
    algorithms: tuple[str, ...] = ("RS256", "ES256", "PS256")
    leeway_seconds: int = 30
    jwks_cache_seconds: int = 300
    refetch_seconds: int = 30
    http_timeout_seconds: float = 5.0

    @classmethod
    def from_settings(cls, settings: Settings) -> OidcConfig:
        """Read the ``IDGOV_OIDC_*`` settings; an issuer without an audience is refused."""
        if not settings.oidc_issuer:
            raise ValueError("IDGOV_OIDC_ISSUER is not set")
        if not settings.oidc_audience:
            raise ValueError("IDGOV_OIDC_AUDIENCE must be set when IDGOV_OIDC_ISSUER is")
        return cls(
            issuer=settings.oidc_issuer,
            audience=settings.oidc_audience,
            jwks_url=settings.oidc_jwks_url,
            identity_claim=settings.oidc_identity_claim,
            algorithms=allowed_algorithms(settings.oidc_algorithms),
            leeway_seconds=settings.oidc_leeway_seconds,
            jwks_cache_seconds=settings.oidc_jwks_cache_seconds,
        )


class JwksCache:
    """The issuer's signing keys, fetched over HTTP and kept for ``jwks_cache_seconds``."""

    def __init__(self, config: OidcConfig, *, clock: Clock,
                 http: Callable[[str], Any] | None = None) -> None:
        self._config = config
        self._clock = clock
        self._get_json = http or self._http_get_json
        self._lock = threading.Lock()
        self._jwks_url = config.jwks_url
        self._keys: KeySet | None = None
        self._fetched_at: datetime | None = None
        self._attempted_at: datetime | None = None
        self.fetches = 0  # successful JWKS downloads, for operators and tests

    def _http_get_json(self, url: str) -> Any:
        with httpx.Client(timeout=self._config.http_timeout_seconds) as client:
            response = client.get(url, headers={"Accept": "application/json"})
            response.raise_for_status()
            return response.json()

    def _discover(self) -> str:
        issuer = self._config.issuer.rstrip("/")
        document = self._get_json(f"{issuer}/.well-known/openid-configuration")
        if not isinstance(document, dict) or not isinstance(document.get("jwks_uri"), str):
            raise ValueError("the discovery document has no jwks_uri")
        if document.get("issuer") != self._config.issuer:
            raise ValueError("the discovery document names another issuer")
        url: str = document["jwks_uri"]
        return url

    def _refresh(self, now: datetime) -> None:
        self._attempted_at = now
        try:
            if self._jwks_url is None:
                self._jwks_url = self._discover()
            data = self._get_json(self._jwks_url)
            keys = KeySet.import_key_set(data)
        except (httpx.HTTPError, ValueError, TypeError, KeyError, JoseError) as exc:
            log.warning("fetching the OIDC signing keys failed: %s", type(exc).__name__)
            if self._keys is None:
                raise Unauthenticated("the issuer's signing keys are unavailable; try again "
                                      "later") from exc
            return  # keep serving the keys we had
        self._keys, self._fetched_at = keys, now
        self.fetches += 1

    def _find(self, kid: str | None) -> Key | None:
        if self._keys is None:
            return None
        if kid is None:
            only = list(self._keys)
            return only[0] if len(only) == 1 else None
        for key in self._keys:
            if key.kid == kid:
                return key
        return None

    def _may_fetch(self, now: datetime) -> bool:
        wait = timedelta(seconds=self._config.refetch_seconds)
        return self._attempted_at is None or now - self._attempted_at >= wait

    def key_for(self, kid: str | None) -> Key:
        """The signing key named ``kid`` (a token without kid: the only key of the set)."""
        with self._lock:
            now = self._clock.now()
            ttl = timedelta(seconds=self._config.jwks_cache_seconds)
            stale = self._fetched_at is None or now - self._fetched_at >= ttl
            if stale and (self._keys is not None or self._may_fetch(now)):
                self._refresh(now)
            if self._keys is None:
                raise Unauthenticated("the issuer's signing keys are unavailable; try again "
                                      "later")
            key = self._find(kid)
            if key is None and self._may_fetch(now):
                self._refresh(now)  # the issuer may have rotated its keys
                key = self._find(kid)
            if key is None:
                raise Unauthenticated("the token is signed with a key the issuer does not "
                                      "publish")
            return key


class OidcAuthenticator:
    """An ``idgov.auth.service.OidcResolver``: (session, token) -> Caller."""

    def __init__(self, config: OidcConfig, *, clock: Clock, keys: JwksCache | None = None
                 ) -> None:
        self.config = config
        self.clock = clock
        self.keys = keys or JwksCache(config, clock=clock)

    def validate(self, token: str) -> dict[str, Any]:
        """The claims of a token whose signature and iss, aud, exp, nbf, iat are valid."""
        try:
            header = jws.extract_compact(token.encode()).headers()
        except (JoseError, ValueError, TypeError) as exc:
            raise Unauthenticated(NOT_VALID) from exc
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in self.config.algorithms:
            raise Unauthenticated(f"the token's signing algorithm {alg!r} is not accepted")
        kid = header.get("kid")
        key = self.keys.key_for(kid if isinstance(kid, str) else None)
        try:
            decoded = jwt.decode(token, key, algorithms=[alg])
            self._claims_registry().validate(decoded.claims)
        except BadSignatureError as exc:
            raise Unauthenticated("the token signature is not valid") from exc
        except ExpiredTokenError as exc:
            raise Unauthenticated(_CLAIM_PROBLEMS["exp"]) from exc
        except MissingClaimError as exc:
            raise Unauthenticated(f"the token lacks the claims {exc.claim}") from exc
        except InvalidClaimError as exc:
            raise Unauthenticated(_CLAIM_PROBLEMS.get(exc.claim, NOT_VALID)) from exc
        except (JoseError, ValueError, TypeError) as exc:
            log.info("OIDC token refused: %s", type(exc).__name__)
            raise Unauthenticated(NOT_VALID) from exc
        return decoded.claims

    def _claims_registry(self) -> jwt.JWTClaimsRegistry:
        return jwt.JWTClaimsRegistry(
            now=int(self.clock.now().timestamp()),
            leeway=self.config.leeway_seconds,
            iss={"essential": True, "value": self.config.issuer},
            aud={"essential": True, "value": self.config.audience},
            exp={"essential": True},
        )

    def __call__(self, session: Session, token: str) -> Caller:
        """Authenticate a bearer JWT and link it to an active identity."""
        claims = self.validate(token)
        claim = self.config.identity_claim
        value = claims.get(claim)
        if not isinstance(value, str) or not value.strip():
            raise Unauthenticated(f"the token carries no {claim!r} claim to identify the person")
        identity = repository.identity_for_claim(session, claim, value.strip())
        if identity is None:
            raise Forbidden(NO_ACTIVE_IDENTITY)
        found = person_roles(session, identity.id)
        if found is None or not found.active:
            raise Forbidden(NO_ACTIVE_IDENTITY)
        return Caller.build(kind="oidc", name=identity.display_name, roles=found.roles,
                            identity_id=identity.id)


def oidc_resolver(settings: Settings, *, clock: Clock) -> OidcAuthenticator | None:
    """The OIDC resolver the settings ask for, or None when no issuer is configured."""
    if not settings.oidc_issuer:
        return None
    return OidcAuthenticator(OidcConfig.from_settings(settings), clock=clock)
