"""The signed manifest on its own: what the signature covers, and every way verification
fails (file changed, truncated or extended, manifest edited, another key, not a manifest)."""

from __future__ import annotations

import json
from pathlib import Path

from idgov.audit.signing import Verifier, generate_signer
from idgov.reports.manifest import (
    SIGNATURE_CONTEXT,
    file_digest,
    sign_manifest,
    signed_message,
    verify,
    write_manifest,
)

SIGNER = generate_signer()
VERIFIER = Verifier(keys={SIGNER.key_id: SIGNER.public_key})


def _export(tmp_path: Path, data: bytes = b"a,b\r\n1,2\r\n") -> tuple[Path, Path]:
    file = tmp_path / "r-20260115T090000Z-00000000000000000000000000000001.csv"
    file.write_bytes(data)
    digest, size = file_digest(file)
    manifest = sign_manifest({
        "export_id": "00000000-0000-0000-0000-000000000001", "report": "r",
        "parameters": {"department": "Finance"}, "generated_at": "2026-01-15T09:00:00+00:00",
        "format": "csv", "file": file.name, "bytes": size, "rows": 1, "sha256": digest,
        "columns": ["a", "b"]}, SIGNER)
    path = file.with_name(file.name + ".manifest.json")
    write_manifest(path, manifest)
    return file, path


def test_the_signature_covers_every_field_but_itself_under_a_context_prefix(
        tmp_path: Path) -> None:
    _file, path = _export(tmp_path)
    manifest = json.loads(path.read_text())
    message = signed_message(manifest)
    assert message.startswith(SIGNATURE_CONTEXT)
    body = json.loads(message[len(SIGNATURE_CONTEXT):])
    assert sorted(body) == sorted(k for k in manifest if k != "signature")
    assert VERIFIER.verify(SIGNER.key_id, message, manifest["signature"])
    # The same signature does not pass for the bare canonical JSON (no context prefix).
    assert not VERIFIER.verify(SIGNER.key_id, message[len(SIGNATURE_CONTEXT):],
                               manifest["signature"])


def test_an_intact_export_verifies(tmp_path: Path) -> None:
    file, path = _export(tmp_path)
    check = verify(file, path, VERIFIER)
    assert check.ok and check.problems == []
    assert check.summary() == (f"export verified: report r, 1 rows, csv, generated at "
                               f"2026-01-15T09:00:00+00:00, signed by key {SIGNER.key_id}")


def test_changed_truncated_or_extended_files_fail(tmp_path: Path) -> None:
    file, path = _export(tmp_path)
    original = file.read_bytes()
    for changed in (b"a,b\r\n1,3\r\n", original[:-1], original + b"\r\n"):
        file.write_bytes(changed)
        check = verify(file, path, VERIFIER)
        assert not check.ok
        assert any("SHA-256 differs" in p for p in check.problems)
    file.write_bytes(original[:-1])
    assert any("the file has 9 bytes, the manifest says 10" in p
               for p in verify(file, path, VERIFIER).problems)


def test_every_edited_manifest_field_fails(tmp_path: Path) -> None:
    file, path = _export(tmp_path)
    original = json.loads(path.read_text())
    edits = {"rows": 2, "report": "other", "parameters": {}, "generated_at":
             "2026-01-16T09:00:00+00:00", "columns": ["a"], "file": "x.csv",
             "export_id": "00000000-0000-0000-0000-000000000002"}
    for field, value in edits.items():
        check = verify(file, {**original, field: value}, VERIFIER)
        assert check.problems == ["the manifest's signature does not verify: the manifest "
                                  "was changed after signing, or was not signed by this key"], \
            field


def test_another_key_a_missing_field_or_no_manifest_fail(tmp_path: Path) -> None:
    file, path = _export(tmp_path)
    other = generate_signer()
    check = verify(file, path, Verifier(keys={other.key_id: other.public_key}))
    assert check.problems == [f"the manifest was signed with key {SIGNER.key_id}, which is "
                              f"not among the given public keys ({other.key_id})"]
    manifest = json.loads(path.read_text())
    del manifest["sha256"]
    assert verify(file, manifest, VERIFIER).problems == ["the manifest lacks sha256"]
    path.write_text("not json")
    assert not verify(file, path, VERIFIER).ok
    assert not verify(file, tmp_path / "missing.json", VERIFIER).ok
