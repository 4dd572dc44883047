"""Ed25519 keys that sign the audit chain: create, load, sign, verify."""

from __future__ import annotations

import base64
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey


def key_id_of(public_key: Ed25519PublicKey) -> str:
    """A stable id for a public key: the first 16 hex digits of SHA-256 of its raw bytes."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


@dataclass(frozen=True)
class Signer:
    """The private key that seals new blocks of the chain, with its key id."""

    private_key: Ed25519PrivateKey
    key_id: str

    def sign(self, message: bytes) -> str:
        return base64.b64encode(self.private_key.sign(message)).decode()

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self.private_key.public_key()


@dataclass(frozen=True)
class Verifier:
    """Public keys by key id, as an auditor holds them."""

    keys: dict[str, Ed25519PublicKey]

    def verify(self, key_id: str, message: bytes, signature: str) -> bool:
        key = self.keys.get(key_id)
        if key is None:
            return False
        try:
            key.verify(base64.b64decode(signature), message)
        except (InvalidSignature, ValueError):
            return False
        return True


def block_message(seq: int, head_hash: str) -> bytes:
    """What a block signature covers: the chain head after the block."""
    return f"idgov-audit:{seq}:{head_hash}".encode()


def public_pem(public_key: Ed25519PublicKey) -> str:
    return public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def ensure_keys(private_path: Path, public_path: Path) -> bool:
    """Create the key pair if the private key is missing. True when a new pair was made."""
    if private_path.exists():
        if not public_path.exists():
            public_path.write_text(public_pem(load_signer(private_path).public_key))
        return False
    private_path.parent.mkdir(parents=True, exist_ok=True)
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    public_path.write_text(public_pem(key.public_key()))
    return True


def load_signer(private_path: Path) -> Signer:
    """Read the private key; its key id derives from the public half."""
    key = serialization.load_pem_private_key(private_path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{private_path} is not an Ed25519 private key")
    return Signer(private_key=key, key_id=key_id_of(key.public_key()))


def load_verifier(*public_paths: Path) -> Verifier:
    """Public keys from PEM files (each may hold one key); rotated keys are simply several."""
    keys: dict[str, Ed25519PublicKey] = {}
    for path in public_paths:
        key = serialization.load_pem_public_key(path.read_bytes())
        if not isinstance(key, Ed25519PublicKey):
            raise ValueError(f"{path} is not an Ed25519 public key")
        keys[key_id_of(key)] = key
    return Verifier(keys=keys)


def generate_signer() -> Signer:
    """A fresh in-memory key (tests, throwaway databases)."""
    key = Ed25519PrivateKey.generate()
    return Signer(private_key=key, key_id=key_id_of(key.public_key()))
