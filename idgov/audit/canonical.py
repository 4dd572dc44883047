"""Canonical serialisation and hashing of audit events (pure)."""

from __future__ import annotations

import enum
import hashlib
import json
import uuid
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

GENESIS_HASH = "0" * 64


def to_jsonable(value: Any) -> Any:
    """Turn a value into plain JSON data, with timestamps as UTC ISO 8601 text."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, uuid.UUID | Decimal):
        return str(value)
    if isinstance(value, enum.Enum):
        return to_jsonable(value.value)
    if isinstance(value, bytes):
        return "<bytes>"
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = [to_jsonable(v) for v in value]
        return sorted(items, key=json.dumps) if isinstance(value, set | frozenset) else items
    raise TypeError(f"cannot put a {type(value).__name__} into the audit trail")


def canonical_bytes(record: dict[str, Any]) -> bytes:
    """JSON with sorted keys and no insignificant whitespace."""
    return json.dumps(
        to_jsonable(record), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    ).encode("utf-8")


def jsonable_hash(record: dict[str, Any]) -> str:
    """:func:`event_hash` of a record already made of plain JSON data (no conversion)."""
    return hashlib.sha256(json.dumps(
        record, sort_keys=True, separators=(",", ":"), ensure_ascii=False
    ).encode("utf-8")).hexdigest()


def event_hash(record: dict[str, Any]) -> str:
    """SHA-256 of the canonical form, hex."""
    return hashlib.sha256(canonical_bytes(record)).hexdigest()
