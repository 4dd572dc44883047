"""What an account row keeps of the target's account: its attributes as JSON, and the last
sign-in the target tells of.

The last sign-in (``AccountInfo.last_sign_in``, filled by connectors that can tell it) is kept
in the account's attributes under :data:`LAST_SIGN_IN_KEY`, as ISO 8601 in UTC
(``2026-01-10T08:00:00+00:00``): certification shows it to reviewers and opens a review of
access left unused. It is part of what the sync compares, so an account row changes (and is
audited, ``account.update``) only when the target tells of a newer sign-in, never on every
run. A target that tells of none leaves none.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any

from connectors.base import AccountInfo

# The key of an account's attributes holding the target's last sign-in. certification reads
# it under the same name (certification.context.LAST_SIGN_IN_KEY; the core never imports it).
LAST_SIGN_IN_KEY = "last_sign_in"


def jsonable(value: Any) -> Any:
    """``value`` as JSON can hold it: bytes decoded (else base64), dates as ISO text, sets
    sorted, anything else as text."""
    if value is None or isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return "base64:" + base64.b64encode(value).decode("ascii")
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = [jsonable(v) for v in value]
        return sorted(items, key=str) if isinstance(value, set | frozenset) else items
    return str(value)


def utc_text(value: datetime) -> str:
    """ISO 8601 in UTC; a naive value is taken as UTC."""
    aware = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return aware.isoformat()


def target_attributes(info: AccountInfo) -> dict[str, Any]:
    """The attributes an account row keeps of ``info``: the target's attributes, plus the
    last sign-in under :data:`LAST_SIGN_IN_KEY` when the target tells of one."""
    attributes: dict[str, Any] = jsonable(dict(info.attributes or {}))
    if info.last_sign_in is not None:
        attributes[LAST_SIGN_IN_KEY] = utc_text(info.last_sign_in)
    else:
        attributes.pop(LAST_SIGN_IN_KEY, None)
    return attributes
