"""Small helpers shaping the values python-keycloak sends and answers (error bodies,
Keycloak's lists of strings)."""

from __future__ import annotations

import json
from typing import Any


def error_body(payload: bytes | str | None) -> dict[str, Any]:
    if not payload:
        return {}
    try:
        parsed = json.loads(payload)
    except (ValueError, TypeError):
        return {}
    return parsed if isinstance(parsed, dict) else {}


def first_value(value: Any) -> Any:
    """A one-valued list as its value."""
    if isinstance(value, list) and len(value) == 1:
        return value[0]
    return value


def normalised(value: Any) -> Any:
    value = first_value(value)
    if isinstance(value, list):
        return tuple(sorted(str(v).casefold() for v in value))
    if isinstance(value, str):
        return value.strip().casefold()
    return value


def as_strings(value: Any) -> list[str]:
    if isinstance(value, list | tuple | set | frozenset):
        return [str(v) for v in value]
    return [str(value)]

