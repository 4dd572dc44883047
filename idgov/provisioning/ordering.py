"""Ordinals: the order of the operations of one identity on one application.

An ordinal is the wall-clock time in nanoseconds when the operation is recorded, made
strictly increasing within the process by a counter under a lock: the operations recorded
in one transaction (an account before its memberships) keep the order they were recorded
in, and operations recorded later get larger ordinals, across processes too as far as the
machines' clocks agree. A database sequence would give a total order, but its row would be
locked by every transaction that records operations until it commits, serialising all
writers of access changes; the order that matters (within one identity and application) is
the order of one transaction, or of transactions far apart in time.

The values fit a signed 64-bit integer until the year 2262.
"""

from __future__ import annotations

import threading
import time

_lock = threading.Lock()
_last = 0


def next_ordinal() -> int:
    """A value larger than any this process handed out before."""
    global _last
    with _lock:
        _last = max(time.time_ns(), _last + 1)
        return _last
