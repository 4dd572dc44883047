"""Connectors for the engine: built from an application's row, cached, and rate-limited.

A :class:`ConnectorCache` keeps one connector per application for as long as the
application's row does not change (its kind, settings and credentials are compared), so
connection pools survive from one operation to the next. Credentials are decrypted only to
build a connector and never kept elsewhere or logged.

A :class:`RateLimiter` is a token bucket per application *in this process*: with several
worker processes, each keeps the application's rate on its own, so the target may see up to
(processes x rate). Set the rate per process accordingly.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from connectors import registry
from connectors.base import Connector
from connectors.errors import AuthenticationFailed, ConnectorError, DataError, NotSupported
from idgov.applications.crypto import CredentialCipher, CredentialsUnreadable
from idgov.config import Settings
from idgov.models.application import Application

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Target:
    """What the engine needs of an application, read in a transaction and used after it."""

    application_id: uuid.UUID
    name: str
    kind: str
    settings: Mapping[str, Any] = field(compare=False)
    credentials_token: bytes | None = field(repr=False)
    updated_at: datetime | None
    rate_limit_per_second: float | None
    resolution_group_id: uuid.UUID | None

    @classmethod
    def of(cls, application: Application) -> Target:
        return cls(application_id=application.id, name=application.name,
                   kind=application.connector_kind, settings=dict(application.settings or {}),
                   credentials_token=application.credentials_encrypted,
                   updated_at=application.updated_at,
                   rate_limit_per_second=application.rate_limit_per_second,
                   resolution_group_id=application.resolution_group_id)

    @property
    def version(self) -> tuple[Any, ...]:
        return (self.kind, repr(sorted(self.settings.items())), self.credentials_token,
                self.updated_at)


def build_connector(target: Target, settings: Settings) -> Connector:
    """A fresh connector for ``target``; failures to build are connector errors (permanent:
    an unknown kind, unreadable credentials, settings the connector refuses)."""
    credentials: dict[str, Any] = {}
    if target.credentials_token is not None:
        try:
            cipher = CredentialCipher.from_file(settings.secret_key_path)
            credentials = cipher.decrypt(target.credentials_token)
        except CredentialsUnreadable:
            raise AuthenticationFailed(
                f"the stored credentials of {target.name} cannot be decrypted with the "
                "configured keys") from None
    try:
        return registry.build(target.kind, target.settings, credentials)
    except ConnectorError:
        raise
    except KeyError:
        raise NotSupported(f"no connector for kind {target.kind!r}") from None
    except Exception as error:
        raise DataError(f"the connector of {target.name} cannot be configured: "
                        f"{type(error).__name__}") from None
    finally:
        credentials = {}


class ConnectorCache:
    """One live connector per application, rebuilt when the application changes."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: dict[uuid.UUID, tuple[tuple[Any, ...], Connector]] = {}

    def get(self, target: Target, settings: Settings) -> Connector:
        with self._lock:
            held = self._items.get(target.application_id)
            if held is not None and held[0] == target.version:
                return held[1]
        connector = build_connector(target, settings)
        with self._lock:
            old = self._items.pop(target.application_id, None)
            self._items[target.application_id] = (target.version, connector)
        if old is not None:
            _close(old[1])
        return connector

    def discard(self, application_id: uuid.UUID) -> None:
        """Forget (and close) the connector of an application, e.g. after a failure that may
        have left its connection broken."""
        with self._lock:
            old = self._items.pop(application_id, None)
        if old is not None:
            _close(old[1])

    def close(self) -> None:
        with self._lock:
            items = list(self._items.values())
            self._items.clear()
        for _version, connector in items:
            _close(connector)


def _close(connector: Connector) -> None:
    """Closing is best effort: a connector that cannot close is dropped anyway."""
    try:
        connector.close()
    except Exception as error:
        log.info("closing a %s connector failed: %s", connector.kind, type(error).__name__)


class RateLimiter:
    """Token buckets per application (in this process): at most ``rate`` calls a second on
    average, bursts of up to ``max(1, rate)``. ``acquire`` reserves a token and sleeps until
    it is due; time and sleep are injectable for tests."""

    def __init__(self, *, time_source: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self._time = time_source
        self._sleep = sleep
        self._lock = threading.Lock()
        self._buckets: dict[uuid.UUID, tuple[float, float]] = {}  # key -> (tokens, at)

    def acquire(self, key: uuid.UUID, rate: float | None) -> float:
        """Wait for a token of ``key`` at ``rate`` per second (None or <= 0: no limit);
        returns the seconds waited."""
        if rate is None or rate <= 0:
            return 0.0
        burst = max(1.0, rate)
        with self._lock:
            now = self._time()
            tokens, at = self._buckets.get(key, (burst, now))
            tokens = min(burst, tokens + (now - at) * rate) - 1.0
            self._buckets[key] = (tokens, now)
        wait = 0.0 if tokens >= 0 else -tokens / rate
        if wait > 0:
            self._sleep(wait)
        return wait


# The engine's defaults: one cache and one limiter per process.
DEFAULT_CACHE = ConnectorCache()
DEFAULT_LIMITER = RateLimiter()
