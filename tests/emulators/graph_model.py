"""The Graph emulator's vocabulary: Graph's limits and property sets, its error type, the
reply a handler returns, injected faults, and small helpers shared by the emulator's parts.

See :mod:`tests.emulators.graph` for the emulator itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

GRAPH_SCOPE = "https://graph.microsoft.com/.default"
MAX_BATCH = 20
MAX_TOP = 999
DEFAULT_PAGE = 100
ALL_PERMISSIONS = frozenset({"User.ReadWrite.All", "GroupMember.ReadWrite.All",
                             "Group.Read.All", "AppRoleAssignment.ReadWrite.All",
                             "Application.Read.All", "AuditLog.Read.All",
                             "UserAuthenticationMethod.ReadWrite.All"})

USER_DEFAULT = ("businessPhones", "displayName", "givenName", "id", "jobTitle", "mail",
                "mobilePhone", "officeLocation", "preferredLanguage", "surname",
                "userPrincipalName")
USER_WRITABLE = frozenset({"accountEnabled", "displayName", "givenName", "surname", "mail",
                           "mailNickname", "userPrincipalName", "passwordProfile", "department",
                           "jobTitle", "employeeId", "employeeType", "companyName",
                           "officeLocation", "mobilePhone", "businessPhones", "usageLocation",
                           "preferredLanguage", "city", "country", "otherMails"})
USER_READABLE = (USER_WRITABLE - {"passwordProfile"}) | {"id", "createdDateTime",
                                                         "signInActivity"}
USER_REQUIRED = ("accountEnabled", "displayName", "mailNickname", "userPrincipalName",
                 "passwordProfile")
GROUP_DEFAULT = ("id", "displayName", "description", "mail", "mailEnabled", "mailNickname",
                 "securityEnabled", "groupTypes", "createdDateTime")
JSON_TYPE = "application/json;odata.metadata=minimal;odata.streaming=true;charset=utf-8"


class GraphError(Exception):
    """An error answer: status, Graph error code, message, extra headers."""

    def __init__(self, status: int, code: str, message: str, *,
                 headers: Mapping[str, str] | None = None,
                 details: list[dict[str, str]] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.headers = dict(headers or {})
        self.details = details


@dataclass
class Reply:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class _Fault:
    status: int
    retry_after: int | None
    remaining: int
    match: str | None = None


def _not_found(key: str) -> GraphError:
    return GraphError(404, "Request_ResourceNotFound",
                      f"Resource '{key}' does not exist or one of its queried reference-property "
                      "objects are not present.")


def _bad(message: str, code: str = "Request_BadRequest") -> GraphError:
    return GraphError(400, code, message)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _complex_enough(password: str) -> bool:
    classes = [any(c.islower() for c in password), any(c.isupper() for c in password),
               any(c.isdigit() for c in password), any(not c.isalnum() for c in password)]
    return 8 <= len(password) <= 256 and sum(classes) >= 3
