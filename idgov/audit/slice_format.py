"""The audit slice file: a verifiable excerpt of the audit trail (pure: no database).

An auditor asks for the events of a period, of one object, of one actor or of one action,
and must be able to check, with nothing but the file and the service's public key, that
every event in it is exactly as the chain sealed it and belongs to a signed block. The file
is JSON Lines, UTF-8; every line is one JSON object written with sorted keys and no spaces.

Line 1, the header::

    {"type": "header", "format": "idgov-audit-slice", "version": 1,
     "generated_at": "2026-03-01T09:00:00+00:00", "kind": "contiguous" | "filtered",
     "filters": {"from": ..., "to": ..., "object_type": ..., "object_id": ...,
                 "actor_id": ..., "action": ...},        (null when not given)
     "through_seq": 1234, "through_hash": "<hex>"}       (the chain head when exported)

Then one line per event, in ascending ``seq``::

    {"type": "event", "role": "selected" | "proof", "record": {...}, "hash": "<hex>",
     "signature": "<base64>" | null}

``record`` is exactly what the chain hashes (seq, id, occurred_at, actor_type, actor_id,
actor_name, action, object_type, object_id, before, after, context, prev_hash, key_id):
``hash`` is SHA-256 of its canonical JSON (sorted keys, no spaces, UTF-8, see
:mod:`idgov.audit.canonical`), so anyone can recompute it. ``signature`` is present on the
last event of each sealed block: Ed25519 by the key ``record.key_id`` over
``idgov-audit:<seq>:<hash>`` (:func:`idgov.audit.signing.block_message`).

An event is ``selected`` when it matches the filters, ``proof`` when it is there only to tie
the selected ones to a block signature. Because an event's hash covers its whole content and
its ``prev_hash``, the only way to link an event to the signature at the end of its block is
to give the following events of the block in full; they are marked ``proof``.

- A **contiguous** slice (no filter but ``from``/``to``, or none at all) holds every event
  from the first that matches to the end of the block of the last that matches, without a
  gap. Events sealed in that range whose ``occurred_at`` is outside the period (transactions
  overlap, so time order and seq order differ slightly) are there as ``proof``. Nothing in
  that seq range can have been left out: seq numbers and links run without a break.
- A **filtered** slice (object, actor or action) is a series of runs: each starts with a
  selected event and goes on, event by event, to the end of its block (the signed event).
  Between runs seq jumps. That no matching event outside the runs was left out rests on the
  service's signature over the trailer (and can be checked against the whole chain with
  ``idgov audit verify``).

Proof events cost what their block holds: an event recorded early in a large block (a bulk
HR import sealed by ``record_many`` as one block) brings the rest of that block with it.
Proof events are shown in full; an auditor reads the whole trail anyway.

Last line, the trailer, signed::

    {"type": "trailer", "header_sha256": "<hex of line 1's bytes>",
     "events_sha256": "<hex of the bytes of every event line>", "events": N,
     "selected": S, "proof": P, "runs": R, "signed_blocks": B, "first_seq": .., "last_seq": ..,
     "block_key_ids": [...], "signature_algorithm": "Ed25519", "key_id": "<16 hex>",
     "signature": "<base64>"}

The trailer signature is Ed25519 by the service's key (the audit signing key, as for report
manifests) over ``b"idgov-audit-slice:v1\\n"`` followed by the canonical JSON of every
trailer field but ``signature``; the prefix keeps it from passing for a block or a manifest
signature. The trailer comes last because the file is streamed; a file without it is
incomplete. Changing any byte of the header or of an event line changes a digest the
trailer signs; the trailer line must be byte for byte its canonical form.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from idgov.audit.canonical import canonical_bytes, to_jsonable

FORMAT = "idgov-audit-slice"
VERSION = 1
SIGNATURE_CONTEXT = b"idgov-audit-slice:v1\n"
SELECTED = "selected"
PROOF = "proof"
FILTER_KEYS = ("from", "to", "object_type", "object_id", "actor_id", "action")
# The fields an event's hash covers (see idgov.audit.service.chain_record).
RECORD_KEYS = frozenset({"seq", "id", "occurred_at", "actor_type", "actor_id", "actor_name",
                         "action", "object_type", "object_id", "before", "after", "context",
                         "prev_hash", "key_id"})
EVENT_KEYS = frozenset({"type", "role", "record", "hash", "signature"})
HEADER_KEYS = frozenset({"type", "format", "version", "generated_at", "kind", "filters",
                         "through_seq", "through_hash"})
TRAILER_KEYS = frozenset({"type", "header_sha256", "events_sha256", "events", "selected",
                          "proof", "runs", "signed_blocks", "first_seq", "last_seq",
                          "block_key_ids", "signature_algorithm", "key_id", "signature"})


@dataclass(frozen=True)
class SliceFilters:
    """Which events a slice selects; every given filter must match (as GET /audit/events)."""

    occurred_from: datetime | None = None
    occurred_to: datetime | None = None
    object_type: str | None = None
    object_id: str | None = None
    actor_id: str | None = None
    action: str | None = None

    @property
    def contiguous(self) -> bool:
        """True when only the period is filtered: the slice is one unbroken run of the chain."""
        return (self.object_type, self.object_id, self.actor_id, self.action) == (None,) * 4

    @property
    def kind(self) -> str:
        return "contiguous" if self.contiguous else "filtered"

    def to_json(self) -> dict[str, Any]:
        """The filters as the header states them (every key, null when not given)."""
        return {"from": to_jsonable(self.occurred_from), "to": to_jsonable(self.occurred_to),
                "object_type": self.object_type, "object_id": self.object_id,
                "actor_id": self.actor_id, "action": self.action}

    @classmethod
    def from_json(cls, data: Any) -> SliceFilters:
        """The filters of a header; ValueError when they are not well formed."""
        if not isinstance(data, dict) or set(data) != set(FILTER_KEYS):
            raise ValueError(f"the filters must be an object with exactly the keys "
                             f"{', '.join(FILTER_KEYS)}")
        for key in FILTER_KEYS:
            if data[key] is not None and not isinstance(data[key], str):
                raise ValueError(f"filter {key} must be text or null")
        return cls(occurred_from=_instant(data["from"], "from"),
                   occurred_to=_instant(data["to"], "to"),
                   object_type=data["object_type"], object_id=data["object_id"],
                   actor_id=data["actor_id"], action=data["action"])

    def mismatch(self, record: dict[str, Any]) -> str | None:
        """Why ``record`` (an event's hashed record) does not match, or None when it does."""
        for key, wanted in (("object_type", self.object_type), ("object_id", self.object_id),
                            ("actor_id", self.actor_id), ("action", self.action)):
            if wanted is not None and record.get(key) != wanted:
                return f"its {key} is {record.get(key)!r}, not {wanted!r}"
        if self.occurred_from is None and self.occurred_to is None:
            return None
        occurred = _instant(record.get("occurred_at"), "occurred_at")
        if occurred is None:
            return "it has no occurred_at"
        if self.occurred_from is not None and occurred < self.occurred_from:
            return f"it occurred at {record['occurred_at']}, before {self.occurred_from}"
        if self.occurred_to is not None and occurred >= self.occurred_to:
            return f"it occurred at {record['occurred_at']}, not before {self.occurred_to}"
        return None

    def matches(self, record: dict[str, Any]) -> bool:
        return self.mismatch(record) is None


def _instant(value: Any, name: str) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} is not an ISO 8601 timestamp: {value!r}") from exc
    if parsed.tzinfo is None:
        raise ValueError(f"{name} has no UTC offset: {value!r}")
    return parsed.astimezone(UTC)


def encode_line(obj: dict[str, Any]) -> bytes:
    """One line of the file: the object's canonical JSON and a newline."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False).encode("utf-8") + b"\n"


def trailer_message(trailer: dict[str, Any]) -> bytes:
    """What the trailer signature covers: the context prefix and the canonical rest."""
    return SIGNATURE_CONTEXT + canonical_bytes({k: v for k, v in trailer.items()
                                                if k != "signature"})
