"""Keycloak users, groups, realm roles and client roles, through python-keycloak.

Settings::

    {"server_url": "https://sso.example.org/",   # a path prefix needs its trailing "/"
     "realm": "staff",
     "client_id": "idgov-provisioner",           # a confidential client with a service account
     "verify": true,                             # or false, or the path of a CA bundle
     "timeout_seconds": 30,
     # optional:
     "grant_type": "client_credentials",         # or "password" (then "username" below)
     "username": "admin", "user_realm": "master",
     "clients": ["portal"],                      # clients whose roles are listed
     "ignored_realm_roles": [...],               # not listed (default: Keycloak's defaults)
     "identifying_attributes": ["email", "employeeNumber"],
     "required_actions": ["UPDATE_PASSWORD"],    # set on new users
     "activation_actions": ["UPDATE_PASSWORD", "VERIFY_EMAIL"],  # first-access email
     "activation_client_id": "portal", "activation_redirect_uri": "https://...",
     "max_retries": 1}

Credentials: ``{"client_secret": ...}`` (and ``{"password": ...}`` for the password grant).

Accounts are users: ``native_id`` is the user id, ``username`` the (lower-cased) username.
Account attributes ``firstName``, ``lastName``, ``email`` and ``emailVerified`` are the user's
own fields; any other name is a user attribute (Keycloak keeps lists of strings; a one-valued
list reads back as its value). Entitlements are named ``group:<group id>``,
``realm-role:<role name>`` and ``client-role:<clientId>:<role name>``; granting one adds the
group membership or the role mapping. Enabling and disabling set the ``enabled`` flag.

First access (``activation_email``): Keycloak emails the user a link to complete required
actions (``PUT .../users/{id}/execute-actions-email``, python-keycloak's
``send_update_account``); Keycloak refuses (400, a DataError) a user without an email address.

The service account needs the ``realm-management`` roles ``manage-users``, ``view-users``,
``query-groups``, ``view-realm`` and ``view-clients``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import requests
from keycloak import KeycloakAdmin, KeycloakOpenIDConnection
from keycloak.exceptions import KeycloakConnectionError, KeycloakError
from requests.adapters import HTTPAdapter

from connectors import base
from connectors.base import AccountInfo, AccountRef, AccountSpec, EntitlementInfo, Page
from connectors.errors import (
    AuthenticationFailed,
    ConnectorError,
    DataError,
    NotSupported,
    PolicyViolation,
    TargetTimeout,
    TargetUnavailable,
    Throttled,
)
from connectors.keycloak.values import as_strings, error_body, first_value, normalised

# The user's own fields; every other account attribute is a user attribute.
USER_FIELDS = ("firstName", "lastName", "email", "emailVerified")
DEFAULT_IDENTIFYING = ("email", "employeeNumber")
GROUP, REALM_ROLE, CLIENT_ROLE = "group", "realm-role", "client-role"
DEFAULT_ACTIVATION_ACTIONS = ("UPDATE_PASSWORD", "VERIFY_EMAIL")
# OAuth error codes of the token endpoint that mean "these credentials are wrong".
CREDENTIAL_ERRORS = frozenset({"invalid_client", "unauthorized_client", "invalid_grant"})
_MISSING = object()


class KeycloakConnector:
    """One realm of one Keycloak server. Thread-safe (calls are serialised)."""

    kind = "keycloak"
    capabilities = frozenset({base.CAN_CREATE, base.CAN_UPDATE, base.CAN_ENABLE_DISABLE,
                              base.CAN_DELETE, base.CAN_GRANT, base.CAN_LIST_ACCOUNTS,
                              base.CAN_LIST_ENTITLEMENTS, base.CAN_ACTIVATION_EMAIL})

    def __init__(self, settings: Mapping[str, Any], credentials: Mapping[str, Any]) -> None:
        for name in ("server_url", "realm", "client_id"):
            if not settings.get(name):
                raise DataError(f"the Keycloak settings lack {name!r}")
        server_url = str(settings["server_url"])
        if not server_url.endswith("/"):
            server_url += "/"  # urljoin drops a last path segment without it
        self.server_url = server_url
        self.realm = str(settings["realm"])
        self.client_id = str(settings["client_id"])
        self._host = urlsplit(server_url).netloc
        self._clients = [str(c) for c in settings.get("clients", ())]
        self._ignored_roles = frozenset(settings.get("ignored_realm_roles", (
            "offline_access", "uma_authorization", f"default-roles-{self.realm.lower()}")))
        self._identifying = tuple(settings.get("identifying_attributes", DEFAULT_IDENTIFYING))
        self._required_actions = list(settings.get("required_actions", ()))
        self._activation_actions = [str(a) for a in settings.get(
            "activation_actions", DEFAULT_ACTIVATION_ACTIONS)]
        self._activation_client = settings.get("activation_client_id") or None
        self._activation_redirect = settings.get("activation_redirect_uri") or None
        self._secrets = [str(v) for v in credentials.values() if v]
        self._retry_after: float | None = None
        self._lock = threading.RLock()
        self._client_uuids: dict[str, str] = {}

        grant_type = str(settings.get("grant_type", "client_credentials"))
        verify = settings.get("verify", True)
        timeout = settings.get("timeout_seconds", 30)
        connection = KeycloakOpenIDConnection(
            server_url=server_url,
            realm_name=self.realm,
            user_realm_name=settings.get("user_realm") or None,
            client_id=self.client_id,
            client_secret_key=credentials.get("client_secret") or None,
            grant_type=grant_type,
            username=settings.get("username") if grant_type == "password" else None,
            password=credentials.get("password") if grant_type == "password" else None,
            # A CA path is set below, on the requests sessions only: the unused httpx
            # clients python-keycloak also builds would warn about a path.
            verify=bool(verify) if not isinstance(verify, str) else True,
            timeout=timeout,
            max_retries=int(settings.get("max_retries", 1)),
        )
        self._admin = KeycloakAdmin(connection=connection)
        self._managers = [connection, connection.keycloak_openid.connection]
        for manager in self._managers:
            if isinstance(verify, str):
                manager.verify = verify  # an explicit CA wins over REQUESTS_CA_BUNDLE
            session = getattr(manager, "_s", None)
            if isinstance(session, requests.Session):
                session.hooks["response"].append(self._watch_response)
                for adapter in session.adapters.values():
                    # urllib3 would sleep through a Retry-After (429, 503) inside the call;
                    # the engine schedules the retry instead of blocking a worker.
                    if isinstance(adapter, HTTPAdapter):
                        adapter.max_retries = adapter.max_retries.new(
                            respect_retry_after_header=False)

    def __repr__(self) -> str:
        return f"KeycloakConnector({self.server_url!r}, realm={self.realm!r})"

    # ---- plumbing ---------------------------------------------------------------------------

    def _watch_response(self, response: requests.Response, *args: Any,
                        **kwargs: Any) -> None:
        """Keep the last answer's Retry-After (python-keycloak's errors drop headers)."""
        self._retry_after = None
        value = response.headers.get("Retry-After")
        if not value:
            return
        try:
            self._retry_after = max(float(value), 0.0)
        except ValueError:
            try:
                when = parsedate_to_datetime(value)
            except (TypeError, ValueError):
                return
            self._retry_after = max(when.timestamp() - time.time(), 0.0)

    def _scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text[:300]

    def _message(self, exc: KeycloakError) -> str:
        body = error_body(exc.response_body)
        text = (body.get("errorMessage") or body.get("error_description")
                or body.get("error") or body.get("message"))
        if not text:
            raw = exc.response_body
            text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw or "")
        return self._scrub(" ".join(str(text).split()))

    def _classify(self, exc: KeycloakError, what: str) -> ConnectorError:
        code = exc.response_code
        detail = self._message(exc)
        said = f"Keycloak answered {code} to {what}" + (f": {detail}" if detail else "")
        if isinstance(exc, KeycloakConnectionError) or code is None:
            cause = exc.__cause__
            if isinstance(cause, requests.Timeout):
                return TargetTimeout(f"Keycloak at {self._host} did not answer in time ({what})")
            return TargetUnavailable(f"cannot reach Keycloak at {self._host} ({what})")
        if code == 401 or error_body(exc.response_body).get("error") in CREDENTIAL_ERRORS:
            return AuthenticationFailed(
                f"Keycloak refused the credentials of client {self.client_id!r} in realm "
                f"{self.realm!r} ({what}: {detail or code})")
        if code == 403:
            return PolicyViolation(f"{said} (does the service account have the "
                                   "realm-management roles it needs?)")
        if code == 429:
            return Throttled(said, retry_after=self._retry_after)
        if code == 408:
            return TargetTimeout(said)
        if code >= 500:
            return TargetUnavailable(said, retry_after=self._retry_after)
        return DataError(said)

    @contextmanager
    def _call(self, what: str) -> Iterator[None]:
        """Serialise, and translate what python-keycloak and requests raise."""
        with self._lock:
            try:
                yield
            except ConnectorError:
                raise
            except KeycloakError as exc:
                raise self._classify(exc, what) from exc
            except requests.Timeout as exc:
                raise TargetTimeout(f"Keycloak at {self._host} did not answer in time "
                                    f"({what})") from exc
            except requests.RequestException as exc:
                raise TargetUnavailable(f"cannot reach Keycloak at {self._host} "
                                        f"({what})") from exc

    @staticmethod
    def _status(exc: KeycloakError) -> int | None:
        return None if isinstance(exc, KeycloakConnectionError) else exc.response_code

    # ---- users -------------------------------------------------------------------------------

    def _find_user(self, username: str) -> dict[str, Any] | None:
        wanted = username.lower()
        found = self._admin.get_users({"username": wanted, "exact": True, "max": 2,
                                       "briefRepresentation": False})
        return next((u for u in found if str(u.get("username", "")).lower() == wanted), None)

    def _get_user(self, ref: AccountRef, what: str) -> dict[str, Any]:
        try:
            user: dict[str, Any] = self._admin.get_user(ref.native_id)
        except KeycloakError as exc:
            if self._status(exc) == 404:
                raise DataError(f"account {ref.username!r} ({ref.native_id}) is not in "
                                f"Keycloak realm {self.realm!r} ({what})") from exc
            raise
        return user

    @staticmethod
    def _read(user: Mapping[str, Any], name: str) -> Any:
        if name in USER_FIELDS:
            return user.get(name, _MISSING)
        return user.get("attributes", {}).get(name, _MISSING)

    def _representation(self, spec: AccountSpec) -> dict[str, Any]:
        payload: dict[str, Any] = {"username": spec.username.lower(), "enabled": spec.enabled}
        attributes: dict[str, list[str]] = {}
        for name, value in spec.attributes.items():
            if value is None or name == "username":
                continue
            if name in USER_FIELDS:
                payload[name] = value
            else:
                attributes[name] = as_strings(value)
        if attributes:
            payload["attributes"] = attributes
        if self._required_actions:
            payload["requiredActions"] = list(self._required_actions)
        return payload

    def _same_account(self, user: Mapping[str, Any], spec: AccountSpec) -> AccountRef:
        """The existing account when it is the same person; DataError otherwise."""
        for name in self._identifying:
            wanted = spec.attributes.get(name)
            have = self._read(user, name)
            if wanted in (None, "") or have is _MISSING or have in (None, "", []):
                continue
            if normalised(wanted) != normalised(have):
                raise DataError(
                    f"username {spec.username.lower()!r} is taken in Keycloak realm "
                    f"{self.realm!r} by another account (its {name} differs)")
        return AccountRef(native_id=str(user["id"]), username=str(user["username"]))

    def _put_user(self, user: Mapping[str, Any], changes: Mapping[str, Any],
                  ref: AccountRef, what: str) -> None:
        """Send the user's editable fields with ``changes`` applied (Keycloak's PUT replaces
        the attributes it is sent, so they are always sent whole)."""
        payload: dict[str, Any] = {"username": user["username"]}
        for name in (*USER_FIELDS, "enabled"):
            if name in user:
                payload[name] = user[name]
        attributes = {k: list(v) for k, v in (user.get("attributes") or {}).items()}
        for name, value in changes.items():
            if name == "username":
                if str(value).lower() != str(user["username"]).lower():
                    raise DataError(f"Keycloak usernames are not renamed ({ref.username!r})")
            elif name in (*USER_FIELDS, "enabled"):
                payload[name] = "" if value is None and name != "emailVerified" else value
            elif value is None:
                attributes.pop(name, None)
            else:
                attributes[name] = as_strings(value)
        payload["attributes"] = attributes
        try:
            self._admin.update_user(str(user["id"]), payload)
        except KeycloakError as exc:
            if self._status(exc) == 404:
                raise DataError(f"account {ref.username!r} is not in Keycloak realm "
                                f"{self.realm!r} ({what})") from exc
            raise

    def _info(self, user: Mapping[str, Any]) -> AccountInfo:
        attributes: dict[str, Any] = {k: user[k] for k in USER_FIELDS if k in user}
        for name, value in (user.get("attributes") or {}).items():
            attributes[name] = first_value(value)
        created = user.get("createdTimestamp")
        if isinstance(created, int):
            attributes["createdTimestamp"] = created
        return AccountInfo(native_id=str(user["id"]), username=str(user["username"]),
                           attributes=attributes, enabled=bool(user.get("enabled", True)))

    # ---- the protocol ---------------------------------------------------------------------------

    def test_connection(self) -> None:
        with self._call("a token and a user query"):
            self._admin.connection.get_token()
            self._admin.get_users({"max": 1, "briefRepresentation": True})

    def create_account(self, spec: AccountSpec) -> AccountRef:
        username = spec.username.lower()
        what = f"creating user {username!r}"
        with self._call(what):
            existing = self._find_user(username)
            if existing is not None:
                return self._same_account(existing, spec)
            try:
                user_id = self._admin.create_user(self._representation(spec))
            except KeycloakError as exc:
                if self._status(exc) != 409:
                    raise
                existing = self._find_user(username)  # created meanwhile, or the email clashes
                if existing is not None:
                    return self._same_account(existing, spec)
                raise DataError(f"Keycloak refused user {username!r}: "
                                f"{self._message(exc)}") from exc
            return AccountRef(native_id=str(user_id), username=username)

    def update_account(self, ref: AccountRef, attributes: Mapping[str, Any]) -> None:
        what = f"updating user {ref.username!r}"
        with self._call(what):
            user = self._get_user(ref, what)
            self._put_user(user, attributes, ref, what)

    def _set_enabled(self, ref: AccountRef, enabled: bool) -> None:
        what = f"{'enabling' if enabled else 'disabling'} user {ref.username!r}"
        with self._call(what):
            user = self._get_user(ref, what)
            if user.get("enabled") is not enabled:
                self._put_user(user, {"enabled": enabled}, ref, what)

    def enable_account(self, ref: AccountRef) -> None:
        self._set_enabled(ref, True)

    def disable_account(self, ref: AccountRef) -> None:
        self._set_enabled(ref, False)

    def delete_account(self, ref: AccountRef) -> None:
        with self._call(f"deleting user {ref.username!r}"):
            try:
                self._admin.delete_user(ref.native_id)
            except KeycloakError as exc:
                if self._status(exc) != 404:
                    raise

    def send_activation_email(self, ref: AccountRef, *, lifespan_seconds: int,
                              actions: Sequence[str] | None = None) -> None:
        """Keycloak emails the user a link, valid ``lifespan_seconds``, to complete ``actions``
        (default: settings ``activation_actions``). DataError for a user without an email
        address, a disabled or absent user (Keycloak answers 400 or 404)."""
        what = f"emailing {ref.username!r} the actions to set up the account"
        with self._call(what):
            try:
                self._admin.send_update_account(
                    user_id=ref.native_id, payload=list(actions or self._activation_actions),
                    client_id=self._activation_client, lifespan=max(int(lifespan_seconds), 1),
                    redirect_uri=self._activation_redirect)
            except KeycloakError as exc:
                if self._status(exc) == 404:
                    raise DataError(f"account {ref.username!r} is not in Keycloak realm "
                                    f"{self.realm!r} ({what})") from exc
                raise

    # ---- entitlements ---------------------------------------------------------------------------

    def _client_uuid(self, client_id: str) -> str | None:
        if client_id not in self._client_uuids:
            found = self._admin.get_client_id(client_id)
            if found is None:
                return None
            self._client_uuids[client_id] = str(found)
        return self._client_uuids[client_id]

    def _parse(self, entitlement: str) -> tuple[str, str, str]:
        """(kind, container, name): group id, realm role name, client id and role name."""
        kind, _, rest = entitlement.partition(":")
        if kind == GROUP and rest:
            return kind, "", rest
        if kind == REALM_ROLE and rest:
            return kind, "", rest
        if kind == CLIENT_ROLE:
            client, _, name = rest.rpartition(":")  # a clientId may itself hold ":" (URLs)
            if client and name:
                return kind, client, name
        raise DataError(f"{entitlement!r} is not a Keycloak entitlement (group:<id>, "
                        "realm-role:<name> or client-role:<clientId>:<name>)")

    def _role(self, kind: str, client: str, name: str, entitlement: str) -> dict[str, Any]:
        """The role's representation (id and name, as role mappings need); DataError if
        the role or its client does not exist."""
        try:
            if kind == REALM_ROLE:
                role: dict[str, Any] = self._admin.get_realm_role(name)
            else:
                client_uuid = self._client_uuid(client)
                if client_uuid is None:
                    raise DataError(f"{entitlement!r}: Keycloak realm {self.realm!r} has no "
                                    f"client {client!r}")
                role = self._admin.get_client_role(client_uuid, name)
        except KeycloakError as exc:
            if self._status(exc) == 404:
                raise DataError(f"{entitlement!r}: no such role in Keycloak realm "
                                f"{self.realm!r}") from exc
            raise
        return {"id": role["id"], "name": role["name"]}

    def grant(self, ref: AccountRef, entitlement: str) -> None:
        what = f"granting {entitlement!r} to {ref.username!r}"
        with self._call(what):
            kind, client, name = self._parse(entitlement)
            try:
                if kind == GROUP:
                    self._admin.group_user_add(ref.native_id, name)
                    return
                role = self._role(kind, client, name, entitlement)
                if kind == REALM_ROLE:
                    self._admin.assign_realm_roles(ref.native_id, [role])
                else:
                    self._admin.assign_client_role(ref.native_id,
                                                   self._client_uuids[client], [role])
            except KeycloakError as exc:
                if self._status(exc) == 404:
                    raise DataError(f"{what}: {self._message(exc)}") from exc
                raise

    def revoke(self, ref: AccountRef, entitlement: str) -> None:
        with self._call(f"revoking {entitlement!r} from {ref.username!r}"):
            kind, client, name = self._parse(entitlement)
            try:
                if kind == GROUP:
                    self._admin.group_user_remove(ref.native_id, name)
                    return
                try:
                    role = self._role(kind, client, name, entitlement)
                except DataError:
                    return  # the role is gone: nobody holds it
                if kind == REALM_ROLE:
                    self._admin.delete_realm_roles_of_user(ref.native_id, [role])
                else:
                    self._admin.delete_client_roles_of_user(
                        ref.native_id, self._client_uuids[client], [role])
            except KeycloakError as exc:
                if self._status(exc) != 404:  # no such user or group: nothing to revoke
                    raise

    # ---- listings -----------------------------------------------------------------------------

    @staticmethod
    def _offset(value: str, cursor: str) -> int:
        try:
            offset = int(value)
        except ValueError:
            offset = -1
        if offset < 0:
            raise DataError(f"not a Keycloak listing cursor: {cursor!r}")
        return offset

    def list_accounts(self, *, cursor: str | None = None,
                      page_size: int = 500) -> Page[AccountInfo]:
        first = self._offset(cursor, cursor) if cursor else 0
        size = max(int(page_size), 1)
        with self._call("listing users"):
            users = self._admin.get_users({"first": first, "max": size + 1,
                                           "briefRepresentation": False})
        items = tuple(self._info(u) for u in users[:size])
        return Page(items=items, next_cursor=str(first + size) if len(users) > size else None)

    def _phases(self) -> list[str]:
        """Listing order: groups, realm roles, then each listed client's roles."""
        return ["g", "r", *(f"c{i}" for i in range(len(self._clients)))]

    def _members(self, users: Sequence[Mapping[str, Any]]) -> tuple[str, ...]:
        return tuple(str(u["id"]) for u in users)

    def _entitlement_page(self, phase: str, offset: int,
                          size: int) -> tuple[list[EntitlementInfo], bool]:
        """Up to ``size`` entitlements of one phase from ``offset``; and whether more follow."""
        admin = self._admin
        if phase == "g":
            groups = admin.get_groups({"first": offset, "max": size + 1,
                                       "briefRepresentation": True})
            return [EntitlementInfo(
                native_id=f"{GROUP}:{g['id']}", name=str(g.get("path") or g["name"]),
                kind=GROUP,
                members=self._members(admin.get_group_members(
                    g["id"], {"briefRepresentation": True})))
                for g in groups[:size]], len(groups) > size
        if phase == "r":
            roles = admin.get_realm_roles(query={"first": offset, "max": size + 1})
            return [EntitlementInfo(
                native_id=f"{REALM_ROLE}:{r['name']}", name=str(r["name"]), kind=REALM_ROLE,
                members=self._members(admin.get_realm_role_members(
                    r["name"], {"briefRepresentation": True})))
                for r in roles[:size] if r["name"] not in self._ignored_roles], \
                len(roles) > size
        client = self._clients[int(phase[1:])]
        client_uuid = self._client_uuid(client)
        if client_uuid is None:
            raise DataError(f"Keycloak realm {self.realm!r} has no client {client!r} "
                            "(settings 'clients')")
        all_roles = sorted(admin.get_client_roles(client_uuid), key=lambda r: r["name"])
        chosen = all_roles[offset:offset + size]
        return [EntitlementInfo(
            native_id=f"{CLIENT_ROLE}:{client}:{r['name']}", name=f"{client}:{r['name']}",
            kind=CLIENT_ROLE,
            members=self._members(admin.get_client_role_members(
                client_uuid, r["name"], briefRepresentation=True)))
            for r in chosen], len(all_roles) > offset + size

    def list_entitlements(self, *, cursor: str | None = None,
                          page_size: int = 500) -> Page[EntitlementInfo]:
        phases = self._phases()
        phase, offset = "g", 0
        if cursor:
            phase, _, raw = cursor.partition(":")
            if phase not in phases:
                raise DataError(f"not a Keycloak listing cursor: {cursor!r}")
            offset = self._offset(raw, cursor)
        size = max(int(page_size), 1)
        with self._call("listing groups and roles"):
            while True:
                items, more = self._entitlement_page(phase, offset, size)
                if more:
                    next_cursor: str | None = f"{phase}:{offset + size}"
                else:
                    following = phases.index(phase) + 1
                    next_cursor = f"{phases[following]}:0" if following < len(phases) else None
                if items or next_cursor is None:
                    return Page(items=tuple(items), next_cursor=next_cursor)
                phase, _, raw = next_cursor.partition(":")
                offset = int(raw)

    def last_sign_in(self, ref: AccountRef) -> datetime | None:
        raise NotSupported("the Keycloak connector does not read sign-in events")

    def close(self) -> None:
        with self._lock:
            for manager in self._managers:
                session = getattr(manager, "_s", None)
                if isinstance(session, requests.Session):
                    session.close()
