"""What can go wrong on a target, classified so that the provisioning engine can act on it.

Transient failures are retried (with backoff, behind a circuit breaker); permanent ones are
routed to people. Messages never carry credentials.
"""

from __future__ import annotations

# Categories of failure, as the engine records and routes them.
SYSTEM_UNAVAILABLE = "system_unavailable"
TIMEOUT = "timeout"
THROTTLED = "throttled"
DATA_ERROR = "data_error"
POLICY_VIOLATION = "policy_violation"
AUTHENTICATION = "authentication"
NOT_SUPPORTED = "not_supported"

TRANSIENT_CATEGORIES = frozenset({SYSTEM_UNAVAILABLE, TIMEOUT, THROTTLED})
PERMANENT_CATEGORIES = frozenset({DATA_ERROR, POLICY_VIOLATION, AUTHENTICATION, NOT_SUPPORTED})


class ConnectorError(Exception):
    """Base of every error a connector raises on purpose."""

    category: str = DATA_ERROR
    transient: bool = False

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after

    def __str__(self) -> str:
        return self.message


class TransientError(ConnectorError):
    """Worth trying again later: the same operation may well succeed."""

    transient = True
    category = SYSTEM_UNAVAILABLE


class TargetUnavailable(TransientError):
    """The target refuses the connection, is down, or answers 5xx."""

    category = SYSTEM_UNAVAILABLE


class TargetTimeout(TransientError):
    """The target did not answer in time."""

    category = TIMEOUT


class Throttled(TransientError):
    """The target asks us to slow down; ``retry_after`` seconds when it said so."""

    category = THROTTLED


class PermanentError(ConnectorError):
    """Trying again will not help: a person must look."""

    transient = False


class DataError(PermanentError):
    """The data is wrong for the target: a malformed DN, a name clash with different
    attributes, a missing object the operation needs."""

    category = DATA_ERROR


class PolicyViolation(PermanentError):
    """The target refuses by its own policy (insufficient rights, a constraint)."""

    category = POLICY_VIOLATION


class AuthenticationFailed(PermanentError):
    """The connector's own credentials are wrong or expired."""

    category = AUTHENTICATION


class NotSupported(PermanentError):
    """The connector cannot do this (see its capabilities)."""

    category = NOT_SUPPORTED
