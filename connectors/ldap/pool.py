"""A small thread-safe pool of bound ldap3 connections.

ldap3's synchronous strategy serves one request at a time per connection, and ldap3 has no
pool of connections of its own (``ServerPool`` chooses among servers). Callers lease a
connection, use it alone, and give it back or throw it away when it broke; the pool opens at
most ``size`` connections and makes the others wait.
"""

from __future__ import annotations

import contextlib
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

Opener = Callable[[], Any]


class ConnectionPool:
    def __init__(self, opener: Opener, size: int) -> None:
        self._opener = opener
        self._size = size
        self._idle: deque[Any] = deque()
        self._open = 0
        self._closed = False
        self._condition = threading.Condition()

    def acquire(self) -> tuple[Any, bool]:
        """A connection and whether it was opened just now (a reused one may have gone
        stale when the server restarted)."""
        with self._condition:
            while True:
                if self._closed:
                    raise RuntimeError("connection pool closed")
                if self._idle:
                    return self._idle.pop(), False
                if self._open < self._size:
                    self._open += 1
                    break
                self._condition.wait()
        try:
            return self._opener(), True
        except BaseException:
            with self._condition:
                self._open -= 1
                self._condition.notify()
            raise

    def release(self, connection: Any) -> None:
        with self._condition:
            if self._closed:
                unbind_quietly(connection)
            else:
                self._idle.append(connection)
            self._condition.notify()

    def discard(self, connection: Any) -> None:
        unbind_quietly(connection)
        with self._condition:
            self._open -= 1
            self._condition.notify()

    def close(self) -> None:
        with self._condition:
            self._closed = True
            idle, self._idle = list(self._idle), deque()
            self._open -= len(idle)
            self._condition.notify_all()
        for connection in idle:
            unbind_quietly(connection)


def unbind_quietly(connection: Any) -> None:
    """Close ``connection``; a broken one may fail to say goodbye, which is fine."""
    with contextlib.suppress(Exception):
        connection.unbind()
    sock = getattr(connection, "socket", None)  # ldap3 leaves it open after a failed connect
    if sock is not None:
        with contextlib.suppress(Exception):
            sock.close()
