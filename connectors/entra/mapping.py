"""Between the connector protocol's values and Graph's JSON: user bodies, account infos,
entitlement ids, initial passwords."""

from __future__ import annotations

import secrets
import string
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from connectors.base import AccountInfo
from connectors.errors import DataError

# Properties read for an account (Graph returns few properties unless asked).
USER_SELECT = ("id,userPrincipalName,accountEnabled,displayName,givenName,surname,mail,"
               "mailNickname,department,jobTitle,employeeId")
# Directory-style names an account mapping may use, and their Graph property.
ALIASES = {"cn": "displayName", "sn": "surname", "departmentNumber": "department",
           "employeeNumber": "employeeId", "title": "jobTitle"}
_NOT_ATTRIBUTES = frozenset({"id", "userPrincipalName", "accountEnabled", "signInActivity",
                             "@odata.type", "@odata.context"})

GROUP_PREFIX = "group:"
APP_ROLE_PREFIX = "app-role:"


def graph_attributes(attributes: Mapping[str, Any]) -> dict[str, Any]:
    """Attributes in Graph's vocabulary (directory-style aliases translated); Graph itself
    refuses names it does not know."""
    out: dict[str, Any] = {}
    for name, value in attributes.items():
        if name in ("passwordProfile", "accountEnabled", "userPrincipalName", "id"):
            raise DataError(f"attribute '{name}' is managed by the connector")
        if isinstance(value, list | tuple) and len(value) == 1 and name != "businessPhones":
            value = value[0]
        out[ALIASES.get(name, name)] = value
    return out


def initial_password() -> str:
    """A random password meeting Entra's complexity rules (it is never stored: the person
    sets their own at first sign-in, or an administrator resets it)."""
    alphabet = string.ascii_letters + string.digits + "!#$%&*+-=?@^_"
    while True:
        password = "".join(secrets.choice(alphabet) for _ in range(24))
        if (any(c.islower() for c in password) and any(c.isupper() for c in password)
                and any(c.isdigit() for c in password)
                and any(not c.isalnum() for c in password)):
            return password


def new_user_body(upn: str, attributes: Mapping[str, Any], enabled: bool,
                  password: str) -> dict[str, Any]:
    """The body of ``POST /users``: Graph's required properties filled from the spec."""
    local = upn.split("@")[0]
    body = graph_attributes(attributes)
    body.setdefault("displayName", local)
    body.setdefault("mailNickname", "".join(c for c in local if c.isalnum() or c in "._-")
                    or "user")
    body.update(userPrincipalName=upn, accountEnabled=enabled,
                passwordProfile={"password": password, "forceChangePasswordNextSignIn": True})
    return body


def parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    # 0001-01-01 is what Graph says for "never".
    return moment if moment.year > 1 else None


def last_sign_in(activity: Any) -> datetime | None:
    """The latest of the interactive and non-interactive sign-ins in ``signInActivity``."""
    if not isinstance(activity, dict):
        return None
    moments = [parse_time(activity.get(k)) for k in ("lastSignInDateTime",
                                                     "lastNonInteractiveSignInDateTime",
                                                     "lastSuccessfulSignInDateTime")]
    known = [m for m in moments if m is not None]
    return max(known) if known else None


def account_info(user: Mapping[str, Any]) -> AccountInfo:
    attributes = {k: v for k, v in user.items() if k not in _NOT_ATTRIBUTES and v is not None}
    return AccountInfo(native_id=str(user["id"]), username=str(user["userPrincipalName"]),
                       attributes=attributes, enabled=bool(user.get("accountEnabled", True)),
                       last_sign_in=last_sign_in(user.get("signInActivity")))


def object_id(value: str, what: str) -> str:
    """``value`` as a directory object id (a GUID), so that it is safe in a URL path."""
    try:
        return str(uuid.UUID(value))
    except (ValueError, AttributeError, TypeError):
        raise DataError(f"{what} '{value}' is not a directory object id") from None


def parse_entitlement(native_id: str) -> tuple[str, str, str | None]:
    """``("group", group id, None)`` or ``("app-role", resource id, app role id)``."""
    if native_id.startswith(GROUP_PREFIX):
        return "group", object_id(native_id[len(GROUP_PREFIX):], "group id"), None
    if native_id.startswith(APP_ROLE_PREFIX):
        resource, _, role = native_id[len(APP_ROLE_PREFIX):].partition(":")
        return ("app-role", object_id(resource, "resource id"),
                object_id(role, "app role id"))
    raise DataError(f"entitlement '{native_id}' is neither 'group:<id>' nor "
                    "'app-role:<resourceId>:<appRoleId>'")


def group_entitlement(group_id: str) -> str:
    return f"{GROUP_PREFIX}{group_id}"


def app_role_entitlement(resource_id: str, app_role_id: str) -> str:
    return f"{APP_ROLE_PREFIX}{resource_id}:{app_role_id}"
