"""The signed manifest of an export, and its offline verification.

An export file ``F`` is accompanied by ``F.manifest.json``::

    {"manifest_version": 1, "export_id": "...", "report": "entitlements",
     "parameters": {...}, "generated_at": "2026-03-01T09:00:00+00:00", "format": "csv",
     "file": "entitlements-20260301T090000Z-<id>.csv", "bytes": 123, "rows": 2,
     "sha256": "<hex>", "columns": [...], "signature_algorithm": "Ed25519",
     "key_id": "<16 hex>", "signature": "<base64>"}

The signature is Ed25519, by the audit trail's signing key (same key id scheme, see
:mod:`idgov.audit.signing`), over ``b"idgov-report-manifest:v1\\n"`` followed by the canonical
JSON (sorted keys, no spaces, UTF-8) of every field but ``signature``. The prefix keeps a
manifest signature from ever passing for an audit block signature or the reverse. Changing
one byte of the file breaks ``sha256``; changing any field of the manifest breaks the
signature.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from idgov.audit.canonical import canonical_bytes
from idgov.audit.signing import Signer, Verifier

MANIFEST_SUFFIX = ".manifest.json"
MANIFEST_VERSION = 1
SIGNATURE_CONTEXT = b"idgov-report-manifest:v1\n"
REQUIRED = ("manifest_version", "export_id", "report", "parameters", "generated_at", "format",
            "file", "bytes", "rows", "sha256", "columns", "signature_algorithm", "key_id",
            "signature")


def manifest_path_for(file: Path) -> Path:
    """Where the manifest of ``file`` lives: beside it, ``<file>.manifest.json``."""
    return file.with_name(file.name + MANIFEST_SUFFIX)


def file_digest(path: Path) -> tuple[str, int]:
    """SHA-256 (hex) and size of a file, read in blocks."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as fh:
        while block := fh.read(1024 * 1024):
            digest.update(block)
            size += len(block)
    return digest.hexdigest(), size


def signed_message(manifest: dict[str, Any]) -> bytes:
    """What the signature covers: the context prefix and the canonical rest."""
    body = {k: v for k, v in manifest.items() if k != "signature"}
    return SIGNATURE_CONTEXT + canonical_bytes(body)


def sign_manifest(body: dict[str, Any], signer: Signer) -> dict[str, Any]:
    """``body`` with the algorithm, key id and signature added."""
    manifest = {**body, "manifest_version": MANIFEST_VERSION, "signature_algorithm": "Ed25519",
                "key_id": signer.key_id}
    manifest.pop("signature", None)
    manifest["signature"] = signer.sign(signed_message(manifest))
    return manifest


def write_manifest(path: Path, manifest: dict[str, Any]) -> None:
    """Write the manifest atomically (a temporary name, flushed, then renamed)."""
    temporary = path.with_name(path.name + ".tmp")
    with temporary.open("w", encoding="utf-8") as fh:
        json.dump(manifest, fh, ensure_ascii=False, indent=2, sort_keys=True)
        fh.write("\n")
        fh.flush()
        os.fsync(fh.fileno())
    temporary.replace(path)


@dataclass(frozen=True)
class ManifestCheck:
    """The outcome of :func:`verify`: ``ok`` only when every check passed."""

    problems: list[str] = field(default_factory=list)
    manifest: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        if self.ok:
            m = self.manifest
            return (f"export verified: report {m['report']}, {m['rows']} rows, "
                    f"{m['format']}, generated at {m['generated_at']}, signed by key "
                    f"{m['key_id']}")
        return "export NOT verified: " + "; ".join(self.problems)


def load_manifest(path: Path) -> dict[str, Any]:
    """Read a manifest file; ValueError when it is not one."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"cannot read the manifest {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise ValueError(f"{path} is not an export manifest (not a JSON object)")
    missing = [k for k in REQUIRED if k not in data]
    if missing:
        raise ValueError(f"{path} is not an export manifest (missing {', '.join(missing)})")
    return data


def verify(file: Path, manifest: Path | dict[str, Any], verifier: Verifier) -> ManifestCheck:
    """Check an export file against its manifest with the given public keys: the manifest's
    signature (by a key the verifier holds), then the file's size and SHA-256. Every failing
    check is listed, worded for a person."""
    try:
        data = manifest if isinstance(manifest, dict) else load_manifest(manifest)
    except ValueError as exc:
        return ManifestCheck(problems=[str(exc)])
    problems: list[str] = []
    missing = [k for k in REQUIRED if k not in data]
    if missing:
        return ManifestCheck(problems=[f"the manifest lacks {', '.join(missing)}"],
                             manifest=data)
    key_id = str(data["key_id"])
    if data["signature_algorithm"] != "Ed25519":
        problems.append(f"unknown signature algorithm {data['signature_algorithm']!r}")
    elif key_id not in verifier.keys:
        problems.append(f"the manifest was signed with key {key_id}, which is not among the "
                        f"given public keys ({', '.join(sorted(verifier.keys)) or 'none'})")
    elif not verifier.verify(key_id, signed_message(data), str(data["signature"])):
        problems.append("the manifest's signature does not verify: the manifest was changed "
                        "after signing, or was not signed by this key")
    try:
        digest, size = file_digest(file)
    except OSError as exc:
        problems.append(f"cannot read the export file {file}: {exc}")
        return ManifestCheck(problems=problems, manifest=data)
    if size != data["bytes"]:
        problems.append(f"the file has {size} bytes, the manifest says {data['bytes']}: the "
                        "file was changed or is not the exported one")
    if digest != data["sha256"]:
        problems.append("the file's SHA-256 differs from the manifest's: the file was changed "
                        "or is not the exported one")
    return ManifestCheck(problems=problems, manifest=data)
