"""The settings of an Entra application, read once and checked without any I/O.

``settings`` (stored in clear on the application)::

    authority      https://login.microsoftonline.com/<tenant>   (or "tenant_id" to build it)
    client_id      the app registration's application (client) id
    graph_url      https://graph.microsoft.com/v1.0 (the default)
    scope          https://graph.microsoft.com/.default (the default)
    ca_file        a PEM file of the CAs to trust instead of the system's (tests, proxies)
    timeout        seconds per HTTP request (default 30)
    upn_domain     appended to a username without "@" to make the userPrincipalName
    app_role_resources   service principal ids whose app roles are listed as entitlements
    identifying_attributes   Graph properties that tell two people apart
                             (default ["employeeId", "mail"])

``credentials`` (encrypted at rest, decrypted by the core): ``client_secret``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from connectors.errors import DataError

DEFAULT_AUTHORITY_HOST = "https://login.microsoftonline.com"
DEFAULT_GRAPH_URL = "https://graph.microsoft.com/v1.0"
DEFAULT_SCOPE = "https://graph.microsoft.com/.default"


@dataclass(frozen=True)
class EntraSettings:
    authority: str
    client_id: str
    graph_url: str
    scope: str
    ca_file: str | None
    timeout: float
    upn_domain: str | None
    app_role_resources: tuple[str, ...]
    identifying_attributes: tuple[str, ...]

    @classmethod
    def read(cls, settings: Mapping[str, Any]) -> EntraSettings:
        """Check and normalise ``settings``; DataError names what is missing or malformed."""
        authority = settings.get("authority")
        if not authority and settings.get("tenant_id"):
            authority = f"{DEFAULT_AUTHORITY_HOST}/{settings['tenant_id']}"
        if not isinstance(authority, str) or not authority.startswith("https://"):
            raise DataError("Entra settings need an https 'authority' or a 'tenant_id'")
        client_id = settings.get("client_id")
        if not isinstance(client_id, str) or not client_id:
            raise DataError("Entra settings need 'client_id'")
        graph_url = str(settings.get("graph_url") or DEFAULT_GRAPH_URL).rstrip("/")
        if not graph_url.startswith("https://"):
            raise DataError("Entra 'graph_url' must be an https URL")
        try:
            timeout = float(settings.get("timeout", 30))
        except (TypeError, ValueError):
            raise DataError("Entra 'timeout' must be a number of seconds") from None
        resources = settings.get("app_role_resources") or ()
        identifying = settings.get("identifying_attributes") or ("employeeId", "mail")
        return cls(authority=authority.rstrip("/"), client_id=client_id, graph_url=graph_url,
                   scope=str(settings.get("scope") or DEFAULT_SCOPE),
                   ca_file=settings.get("ca_file") or None, timeout=timeout,
                   upn_domain=settings.get("upn_domain") or None,
                   app_role_resources=tuple(str(r) for r in resources),
                   identifying_attributes=tuple(str(a) for a in identifying))
