"""Paged listings that span several ``list_*`` calls.

An OpenLDAP paged-results cookie is only valid on the connection that received it, so a
listing opens a connection of its own and keeps it from its first page to its last; the
cursor handed to the caller is an opaque token naming that listing. Listings abandoned by
their caller are ended (their connection closed) after ``MAX_OPEN`` newer ones.
"""

from __future__ import annotations

import secrets
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

PAGED_RESULTS_OID = "1.2.840.113556.1.4.319"
MAX_OPEN = 32


@dataclass
class Listing:
    """One walk over one or more search bases."""

    bases: tuple[str, ...]
    search_filter: str
    attributes: list[str]
    connection: Any = None
    base_index: int = 0
    cookie: bytes | None = None
    buffer: deque[dict[str, Any]] = field(default_factory=deque)

    @property
    def done(self) -> bool:
        return self.base_index >= len(self.bases)


class Listings:
    """The listings in progress, by cursor token (thread-safe)."""

    def __init__(self, on_evict: Callable[[Listing], None]) -> None:
        self._open: dict[str, Listing] = {}
        self._lock = threading.Lock()
        self._on_evict = on_evict

    def park(self, listing: Listing) -> str:
        token = secrets.token_urlsafe(16)
        with self._lock:
            self._open[token] = listing
            evicted = []
            while len(self._open) > MAX_OPEN:
                oldest = next(iter(self._open))
                evicted.append(self._open.pop(oldest))
        for old in evicted:
            self._on_evict(old)
        return token

    def take(self, token: str) -> Listing | None:
        with self._lock:
            return self._open.pop(token, None)

    def close(self) -> None:
        with self._lock:
            listings, self._open = list(self._open.values()), {}
        for listing in listings:
            self._on_evict(listing)


def timestamp(value: Any) -> datetime | None:
    """A GeneralizedTime (``20260115090000Z``, fractions and offsets allowed) as an aware
    datetime; None when absent or unreadable."""
    if isinstance(value, list | tuple):
        value = value[0] if value else None
    if value is None:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    text = str(value).strip()
    for fmt in ("%Y%m%d%H%M%S.%f%z", "%Y%m%d%H%M%S%z", "%Y%m%d%H%M%z"):
        try:
            return datetime.strptime(text.replace("Z", "+0000"), fmt).astimezone(UTC)
        except ValueError:
            continue
    return None
