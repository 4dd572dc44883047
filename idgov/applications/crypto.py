"""Connector credentials encrypted at rest with Fernet, several keys at once for rotation.

The key file holds one urlsafe-base64 Fernet key per line, newest first; blank lines and
lines starting with ``#`` are ignored. The first key encrypts; every key decrypts, so a key
can be rotated in by prepending it (:func:`add_secret_key`), re-encrypting the stored
credentials, then dropping the old line.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from idgov.errors import DomainError


class CredentialsUnreadable(DomainError):
    """Stored credentials could not be decrypted with any configured key."""

    title = "Credentials unreadable"


def _write_private(path: Path, text: str, *, exclusive: bool) -> None:
    """Write a 0600 file; when replacing, via a temporary file so no key is ever half-lost."""
    path.parent.mkdir(parents=True, exist_ok=True)
    target = path if exclusive else path.with_name(path.name + ".new")
    if not exclusive:
        target.unlink(missing_ok=True)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    if not exclusive:
        os.replace(target, path)


def ensure_secret_key(path: Path) -> bool:
    """Create the key file with one fresh key (mode 0600) if missing. True when created."""
    if path.exists():
        return False
    try:
        _write_private(path, Fernet.generate_key().decode() + "\n", exclusive=True)
    except FileExistsError:
        # Another process made it between our check and our open: theirs is as good.
        return False
    return True


def read_keys(path: Path) -> list[bytes]:
    """The keys in ``path``, newest first."""
    keys = [line.strip().encode() for line in path.read_text().splitlines()
            if line.strip() and not line.strip().startswith("#")]
    if not keys:
        raise ValueError(f"{path} holds no key")
    return keys


def add_secret_key(path: Path) -> None:
    """Prepend a fresh key: new credentials use it, older ones still decrypt."""
    ensure_secret_key(path)
    lines = [Fernet.generate_key().decode(), *(k.decode() for k in read_keys(path))]
    _write_private(path, "\n".join(lines) + "\n", exclusive=False)


class CredentialCipher:
    """Encrypts and decrypts credential dictionaries. Its repr shows no key."""

    def __init__(self, keys: Sequence[bytes | str]) -> None:
        if not keys:
            raise ValueError("a cipher needs at least one key")
        self._fernet = MultiFernet([Fernet(k) for k in keys])

    @classmethod
    def from_file(cls, path: Path) -> CredentialCipher:
        """The cipher of the key file at ``path``, creating the file when it is missing."""
        ensure_secret_key(path)
        return cls(read_keys(path))

    def __repr__(self) -> str:
        return "CredentialCipher(<keys hidden>)"

    def encrypt(self, credentials: Mapping[str, Any]) -> bytes:
        """A Fernet token of the credentials as JSON, under the newest key."""
        plain = json.dumps(dict(credentials), sort_keys=True, separators=(",", ":"))
        return self._fernet.encrypt(plain.encode("utf-8"))

    def decrypt(self, token: bytes) -> dict[str, Any]:
        """The credentials in ``token``, whichever configured key encrypted them."""
        try:
            plain = self._fernet.decrypt(token)
        except InvalidToken:
            raise CredentialsUnreadable(
                "the stored credentials cannot be decrypted with the configured keys "
                "(was the key file replaced instead of rotated?)") from None
        data: dict[str, Any] = json.loads(plain)
        return data

    def rotate(self, token: bytes) -> bytes:
        """The same credentials re-encrypted under the newest key."""
        try:
            return self._fernet.rotate(token)
        except InvalidToken:
            raise CredentialsUnreadable(
                "the stored credentials cannot be decrypted with the configured keys") from None
