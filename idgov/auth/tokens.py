"""API tokens: ``idg_<prefix>_<secret>``, stored as the SHA-256 of the whole token.

The token carries 256 bits of randomness, so a fast hash is the right tool (as GitHub and
PyPI do); the prefix finds the row without scanning, and comparison is constant-time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

TOKEN_PREFIX = "idg"  # noqa: S105 - a public marker, not a secret


@dataclass(frozen=True)
class TokenParts:
    prefix: str
    secret: str


def new_token() -> tuple[str, str, str]:
    """A fresh token: (the full token to hand out once, its prefix, its hash)."""
    prefix = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    token = f"{TOKEN_PREFIX}_{prefix}_{secret}"
    return token, prefix, hash_token(token)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def split_token(token: str) -> TokenParts | None:
    """The prefix and secret of a well-formed token, or None."""
    parts = token.split("_", 2)
    if len(parts) != 3 or parts[0] != TOKEN_PREFIX or not parts[1] or not parts[2]:
        return None
    return TokenParts(prefix=parts[1], secret=parts[2])


def matches(token: str, stored_hash: str) -> bool:
    return hmac.compare_digest(hash_token(token), stored_hash)
