"""LDAP result codes and ldap3 exceptions translated into the connector error taxonomy.

Messages name the operation and the entry, and the server's diagnostic; they never carry the
bind password (``scrub`` removes it should a library ever echo it).
"""

from __future__ import annotations

import socket
import ssl

from ldap3.core import exceptions as ldap_exc

from connectors.errors import (
    AuthenticationFailed,
    ConnectorError,
    DataError,
    PolicyViolation,
    TargetTimeout,
    TargetUnavailable,
)

SUCCESS = 0
TIME_LIMIT_EXCEEDED = 3
NO_SUCH_ATTRIBUTE = 16
ATTRIBUTE_OR_VALUE_EXISTS = 20
NO_SUCH_OBJECT = 32
OBJECT_CLASS_VIOLATION = 65
ENTRY_ALREADY_EXISTS = 68

_BY_CODE: dict[int, type[ConnectorError]] = {
    TIME_LIMIT_EXCEEDED: TargetTimeout,
    8: AuthenticationFailed,       # strongerAuthRequired
    48: AuthenticationFailed,      # inappropriateAuthentication
    49: AuthenticationFailed,      # invalidCredentials
    11: PolicyViolation,           # adminLimitExceeded
    19: PolicyViolation,           # constraintViolation
    50: PolicyViolation,           # insufficientAccessRights
    53: PolicyViolation,           # unwillingToPerform
    51: TargetUnavailable,         # busy
    52: TargetUnavailable,         # unavailable
    80: TargetUnavailable,         # other (server-side trouble)
    # everything else, e.g. invalidDNSyntax (34), namingViolation (64), objectClassViolation
    # (65), invalidAttributeSyntax (21), undefinedAttributeType (17), noSuchObject (32):
    # DataError
}


def scrub(message: str, secret: str | None) -> str:
    if secret:
        message = message.replace(secret, "***")
    return message


def from_result(result: dict[str, object], what: str, secret: str | None = None) -> ConnectorError:
    """The error for an LDAP result that is not a success."""
    code = int(str(result.get("result", 80)))
    description = str(result.get("description") or "error")
    diagnostic = str(result.get("message") or "").strip()
    message = f"LDAP {what}: {description} ({code})"
    if diagnostic:
        message += f": {diagnostic}"
    if code == 53 and "superior knowledge" in diagnostic:  # a DN outside the directory
        return DataError(scrub(message, secret))
    return _BY_CODE.get(code, DataError)(scrub(message, secret))


def is_timeout(exc: BaseException) -> bool:
    text = str(exc).lower()
    if isinstance(exc, ldap_exc.LDAPResponseTimeoutError):
        return True
    return isinstance(exc, socket.timeout | TimeoutError) or "timed out" in text \
        or "timeout" in text


def _is_certificate(exc: BaseException) -> bool:
    text = str(exc).lower()
    return isinstance(exc, ssl.SSLCertVerificationError) or "certificate" in text \
        or "hostname" in text


def from_exception(exc: BaseException, what: str, secret: str | None = None) -> ConnectorError:
    """The error for an exception ldap3 (or the socket under it) raised."""
    detail = scrub(str(exc) or type(exc).__name__, secret)
    if isinstance(exc, ConnectorError):
        return exc
    if isinstance(exc, ldap_exc.LDAPInvalidDnError):
        return DataError(f"LDAP {what}: malformed DN ({detail})")
    if isinstance(exc, ldap_exc.LDAPInvalidFilterError
                  | ldap_exc.LDAPAttributeError | ldap_exc.LDAPObjectClassError
                  | ldap_exc.LDAPInvalidValueError):
        return DataError(f"LDAP {what}: {detail}")
    if isinstance(exc, ldap_exc.LDAPResponseTimeoutError):
        return TargetTimeout(f"LDAP {what}: no answer in time ({detail})")
    if isinstance(exc, ldap_exc.LDAPCommunicationError | ldap_exc.LDAPStartTLSError
                  | ldap_exc.LDAPSSLConfigurationError | ssl.SSLError | OSError):
        if _is_certificate(exc):
            return AuthenticationFailed(f"LDAP {what}: the server's TLS certificate is not "
                                        f"trusted ({detail})")
        if is_timeout(exc):
            return TargetTimeout(f"LDAP {what}: no answer in time ({detail})")
        return TargetUnavailable(f"LDAP {what}: directory unreachable ({detail})")
    return DataError(f"LDAP {what}: {detail}")


def is_connection_broken(exc: BaseException) -> bool:
    """Whether the connection that raised ``exc`` must be thrown away."""
    return isinstance(exc, ldap_exc.LDAPCommunicationError | ldap_exc.LDAPResponseTimeoutError
                      | ldap_exc.LDAPStartTLSError | ssl.SSLError | OSError)
