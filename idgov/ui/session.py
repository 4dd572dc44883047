"""The signed session cookie of the web pages: who signed in, the CSRF token, notices.

Starlette's ``SessionMiddleware`` (itsdangerous) signs the cookie; the cookie is signed,
not encrypted, so it holds only ids and the CSRF token, never a secret. Its key is derived
(HKDF-SHA256) from the service's own secret key file (``var/secret.key``, made by
``idgov init``), so every API process behind a load balancer reads every other's cookies
and nobody has a second secret to manage. Without that file (a test, a first start) a
random key is made for this process: sessions then end when it stops.
"""

from __future__ import annotations

import hmac
import logging
import secrets
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from starlette.requests import Request

from idgov.config import Settings

log = logging.getLogger(__name__)

COOKIE_NAME = "idgov_session"
MAX_AGE_SECONDS = 8 * 3600  # a working day; the signature carries the time it was made
CSRF_FIELD = "csrf_token"

_SUBJECT = "subject"
_CSRF = "csrf"
_FLASH = "flash"


def session_secret(settings: Settings) -> str:
    """The key that signs the session cookie (see the module docstring)."""
    configured = settings.session_secret
    if configured:
        return str(getattr(configured, "get_secret_value", lambda: configured)())
    path = settings.secret_key_path
    if path.exists():
        material = path.read_bytes().strip()
        key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                   info=b"idgov web session cookie v1").derive(material)
        return key.hex()
    log.warning("no secret key at %s: web sessions last only as long as this process", path)
    return secrets.token_hex(32)


def https_only(settings: Settings) -> bool:
    """Send the cookie over HTTPS only when the service is published over HTTPS."""
    return bool(settings.public_url and settings.public_url.lower().startswith("https://"))


@dataclass(frozen=True)
class Subject:
    """Who signed in: a person (``identity``), or in the demo a service principal."""

    kind: str  # "identity" or "principal"
    id: uuid.UUID
    via: str  # "oidc" or "demo"
    at: str  # when they signed in (ISO 8601)


def signed_in(request: Request) -> Subject | None:
    """The subject of the session, or None."""
    raw = request.session.get(_SUBJECT)
    if not isinstance(raw, Mapping):
        return None
    try:
        return Subject(kind=str(raw["kind"]), id=uuid.UUID(str(raw["id"])), via=str(raw["via"]),
                       at=str(raw["at"]))
    except (KeyError, ValueError):
        return None


def sign_in(request: Request, *, kind: str, subject_id: uuid.UUID, via: str,
            now: datetime) -> None:
    """Start a fresh session for the subject (a new CSRF token: no session fixation)."""
    request.session.clear()
    request.session[_SUBJECT] = {"kind": kind, "id": str(subject_id), "via": via,
                                 "at": now.isoformat()}
    request.session[_CSRF] = secrets.token_urlsafe(32)


def sign_out(request: Request) -> None:
    request.session.clear()


def csrf_token(request: Request) -> str:
    """The session's CSRF token, made on first use (the sign-in form needs one too)."""
    token = request.session.get(_CSRF)
    if not isinstance(token, str) or not token:
        token = secrets.token_urlsafe(32)
        request.session[_CSRF] = token
    return token


def csrf_valid(request: Request, presented: Any) -> bool:
    expected = request.session.get(_CSRF)
    return (isinstance(expected, str) and isinstance(presented, str) and bool(expected)
            and hmac.compare_digest(expected, presented))


def flash(request: Request, message: str, level: str = "info") -> None:
    """A notice shown once, on the next page rendered (after a redirect)."""
    notices = list(request.session.get(_FLASH) or [])
    notices.append([level, message])
    request.session[_FLASH] = notices[-5:]


def pop_flashes(request: Request) -> list[tuple[str, str]]:
    notices = request.session.pop(_FLASH, None) or []
    return [(str(level), str(text)) for level, text in notices]
