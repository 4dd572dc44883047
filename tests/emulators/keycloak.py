"""A strict emulator of the part of the Keycloak Admin REST API that python-keycloak uses.

No Keycloak server can be installed on these machines, so the Keycloak connector's tests
talk to this Starlette application over real HTTP (see :mod:`tests.emulators.serve`), with
python-keycloak unchanged. It follows Keycloak's documented behaviour (Admin REST API,
version 24-26):

- ``POST /realms/{realm}/protocol/openid-connect/token`` (form encoded): grants
  ``client_credentials`` (confidential clients with a service account), ``password`` and
  ``refresh_token``; a wrong secret answers 401 ``unauthorized_client``, a wrong password 401
  ``invalid_grant``; an unknown or expired refresh token 400 ``invalid_grant`` "Token is not
  active". ``client_credentials`` tokens carry no refresh token (Keycloak's default).
- ``/admin/realms/{realm}/...`` needs ``Authorization: Bearer``; a missing, unknown or
  expired token answers 401, a token without admin rights 403.
- Users: create 201 with an empty body and ``Location``; usernames and emails lower-cased;
  409 ``{"errorMessage": "User exists with same username"}`` (or email); unknown top-level
  fields 400; ``first``/``max`` paging (default max 100), ``username``/``email``/``search``
  with ``exact``; update 204 (absent fields unchanged; ``attributes`` replaced when sent;
  the username is read-only); delete 204; group membership ``PUT``/``DELETE`` 204 (both
  idempotent); role mappings ``POST``/``DELETE`` 204 with role representations whose ``id``
  and ``name`` must match a role (404 "Role not found" otherwise).
- Groups (top level), realm roles, clients and client roles, with their members.

Tests seed and inspect the state through methods (``add_group``, ``add_realm_role``,
``add_client``, ``add_client_role``, ``add_user``, ``user``, ``group_members``, ...) and inject
faults: ``down`` (503), ``throttle(retry_after)`` (429 with ``Retry-After``),
``fail_next(status, body)``, ``hold()``/``release()`` (requests wait until released: for
timeouts, without sleeping), ``expire_tokens()``. ``calls`` records every request.
"""

from __future__ import annotations

import json
import re
import secrets
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, quote

import anyio.to_thread
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

Handler = Callable[[Request], Awaitable[Response]]

TOKEN_LIFETIME_SECONDS = 300

# UserRepresentation's fields (Keycloak 24-26); anything else is refused.
USER_FIELDS = frozenset({
    "id", "username", "firstName", "lastName", "email", "emailVerified", "attributes",
    "userProfileMetadata", "self", "origin", "createdTimestamp", "enabled", "totp",
    "federationLink", "serviceAccountClientId", "credentials", "disableableCredentialTypes",
    "requiredActions", "federatedIdentities", "realmRoles", "clientRoles", "clientConsents",
    "notBefore", "applicationRoles", "socialLinks", "groups", "access",
})
GROUP_FIELDS = frozenset({
    "id", "name", "description", "path", "parentId", "subGroupCount", "subGroups",
    "attributes", "realmRoles", "clientRoles", "access",
})
ROLE_FIELDS = frozenset({
    "id", "name", "description", "scopeParamRequired", "composite", "composites",
    "clientRole", "containerId", "attributes",
})
REQUIRED_ACTIONS = frozenset({
    "CONFIGURE_TOTP", "TERMS_AND_CONDITIONS", "UPDATE_PASSWORD", "UPDATE_PROFILE",
    "VERIFY_EMAIL", "delete_account", "webauthn-register", "update_user_locale",
})
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def _error(status: int, message: str, **extra: Any) -> JSONResponse:
    """Keycloak's admin error body: ``{"errorMessage": ...}`` (validation, conflicts)."""
    return JSONResponse({"errorMessage": message, **extra}, status_code=status)


def _not_found(message: str) -> JSONResponse:
    """Keycloak's NotFoundException body."""
    return JSONResponse({"error": message}, status_code=404)


def _oauth_error(status: int, error: str, description: str) -> JSONResponse:
    return JSONResponse({"error": error, "error_description": description},
                        status_code=status, headers={"Cache-Control": "no-store"})


def _flag(request: Request, name: str, default: bool = False) -> bool:
    value = request.query_params.get(name)
    if value is None:
        return default
    return value.strip().lower() == "true"


def _int(request: Request, name: str, default: int | None) -> int | None:
    value = request.query_params.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError as exc:
        # JAX-RS answers 404 when a query parameter does not convert.
        raise HTTPException(404, "HTTP 404 Not Found") from exc


def _page(items: list[Any], request: Request, default_max: int | None) -> list[Any]:
    first = max(_int(request, "first", 0) or 0, 0)
    size = _int(request, "max", default_max)
    if size is None or size < 0:
        return items[first:]
    return items[first:first + size]


class _BadBody(Exception):
    def __init__(self, response: Response) -> None:
        super().__init__("bad body")
        self.response = response


def _parse_json(request: Request, raw: bytes) -> Any:
    if "application/json" not in request.headers.get("content-type", ""):
        # RESTEasy: no reader for another media type.
        raise _BadBody(JSONResponse({"error": "HTTP 415 Unsupported Media Type"},
                                    status_code=415))
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise _BadBody(_error(400, "unable to read contents from stream")) from exc


def _check_fields(payload: Any, allowed: frozenset[str]) -> None:
    if not isinstance(payload, dict):
        raise _BadBody(_error(400, "unable to read contents from stream"))
    unknown = sorted(set(payload) - allowed)
    if unknown:
        raise _BadBody(_error(400, f'Unrecognized field "{unknown[0]}"'))


@dataclass
class Role:
    id: str
    name: str
    container_id: str
    client_role: bool
    description: str = ""
    attributes: dict[str, list[str]] = field(default_factory=dict)

    def representation(self) -> dict[str, Any]:
        rep: dict[str, Any] = {"id": self.id, "name": self.name, "composite": False,
                               "clientRole": self.client_role, "containerId": self.container_id}
        if self.description:
            rep["description"] = self.description
        return rep


@dataclass
class Client:
    id: str
    client_id: str
    secret: str | None
    public: bool = False
    service_account: bool = False
    admin: bool = False
    roles: dict[str, Role] = field(default_factory=dict)

    def representation(self) -> dict[str, Any]:
        return {"id": self.id, "clientId": self.client_id, "enabled": True,
                "publicClient": self.public, "serviceAccountsEnabled": self.service_account,
                "protocol": "openid-connect", "clientAuthenticatorType": "client-secret"}


@dataclass
class User:
    id: str
    username: str
    created: int
    enabled: bool = True
    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None
    email_verified: bool = False
    attributes: dict[str, list[str]] = field(default_factory=dict)
    required_actions: list[str] = field(default_factory=list)
    password: str | None = None
    admin: bool = False
    groups: set[str] = field(default_factory=set)
    realm_roles: set[str] = field(default_factory=set)  # role ids
    client_roles: dict[str, set[str]] = field(default_factory=dict)  # client uuid -> role ids

    def representation(self, *, brief: bool = False) -> dict[str, Any]:
        rep: dict[str, Any] = {"id": self.id, "username": self.username}
        if self.first_name is not None:
            rep["firstName"] = self.first_name
        if self.last_name is not None:
            rep["lastName"] = self.last_name
        if self.email is not None:
            rep["email"] = self.email
        rep["emailVerified"] = self.email_verified
        rep["createdTimestamp"] = self.created
        rep["enabled"] = self.enabled
        if brief:
            return rep
        if self.attributes:
            rep["attributes"] = {k: list(v) for k, v in self.attributes.items()}
        rep.update({"totp": False, "disableableCredentialTypes": [],
                    "requiredActions": list(self.required_actions), "notBefore": 0,
                    "access": {"manageGroupMembership": True, "view": True,
                               "mapRoles": True, "impersonate": False, "manage": True}})
        return rep


@dataclass
class Group:
    id: str
    name: str
    attributes: dict[str, list[str]] = field(default_factory=dict)

    def representation(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "path": f"/{self.name}",
                "subGroupCount": 0, "subGroups": [], "attributes": dict(self.attributes),
                "realmRoles": [], "clientRoles": {}}


@dataclass
class Realm:
    name: str
    id: str
    users: dict[str, User] = field(default_factory=dict)
    groups: dict[str, Group] = field(default_factory=dict)
    roles: dict[str, Role] = field(default_factory=dict)  # by name
    clients: dict[str, Client] = field(default_factory=dict)  # by uuid
    duplicate_emails_allowed: bool = False

    def client_by_client_id(self, client_id: str) -> Client | None:
        return next((c for c in self.clients.values() if c.client_id == client_id), None)

    def user_by_username(self, username: str) -> User | None:
        wanted = username.lower()
        return next((u for u in self.users.values() if u.username == wanted), None)


@dataclass
class Token:
    realm: str
    client_id: str
    admin: bool
    expires_at: float
    kind: str = "access"


@dataclass
class _Fault:
    status: int
    body: Any
    headers: dict[str, str]
    remaining: int


class KeycloakEmulator:
    """The emulator's state and its Starlette application (``.app``)."""

    def __init__(self, *, realm: str = "idgov", client_id: str = "idgov-provisioner",
                 client_secret: str = "provisioner-secret",  # noqa: S107
                 clock: Callable[[], float] = time.time) -> None:
        self._lock = threading.RLock()
        self._clock = clock
        self.realms: dict[str, Realm] = {}
        self.tokens: dict[str, Token] = {}
        self.calls: list[tuple[str, str]] = []
        self.down = False
        self._faults: list[_Fault] = []
        self._released = threading.Event()
        self._released.set()
        self.held = 0
        self.add_realm("master")
        self.add_client("admin-cli", secret=None, public=True, realm="master")
        self.realm_name = realm
        if realm != "master":
            self.add_realm(realm)
        self.client_id = client_id
        self.add_client(client_id, secret=client_secret, service_account=True, admin=True,
                        realm=realm)
        self.app = self._build_app()

    # ---- seeding and inspection (test side) ---------------------------------------------------

    def _realm(self, realm: str | None) -> Realm:
        return self.realms[realm or self.realm_name]

    def add_realm(self, name: str) -> Realm:
        with self._lock:
            realm = Realm(name=name, id=str(uuid.uuid4()))
            self.realms[name] = realm
            for role in ("offline_access", "uma_authorization", f"default-roles-{name}"):
                realm.roles[role] = Role(id=str(uuid.uuid4()), name=role, container_id=realm.id,
                                         client_role=False)
            for client in ("account", "broker", "realm-management", "security-admin-console"):
                c_id = str(uuid.uuid4())
                realm.clients[c_id] = Client(id=c_id, client_id=client, secret=None)
            return realm

    def add_client(self, client_id: str, *, secret: str | None = None, public: bool = False,
                   service_account: bool = False, admin: bool = False,
                   realm: str | None = None) -> str:
        with self._lock:
            target = self._realm(realm)
            uid = str(uuid.uuid4())
            target.clients[uid] = Client(id=uid, client_id=client_id, secret=secret,
                                         public=public, service_account=service_account,
                                         admin=admin)
            return uid

    def set_client_secret(self, client_id: str, secret: str, *, realm: str | None = None) -> None:
        with self._lock:
            client = self._realm(realm).client_by_client_id(client_id)
            assert client is not None
            client.secret = secret

    def set_client_admin(self, client_id: str, admin: bool, *, realm: str | None = None) -> None:
        with self._lock:
            client = self._realm(realm).client_by_client_id(client_id)
            assert client is not None
            client.admin = admin
            for token in self.tokens.values():
                if token.client_id == client_id:
                    token.admin = admin

    def add_client_role(self, client_id: str, name: str, *, realm: str | None = None) -> str:
        with self._lock:
            client = self._realm(realm).client_by_client_id(client_id)
            assert client is not None, client_id
            role = Role(id=str(uuid.uuid4()), name=name, container_id=client.id, client_role=True)
            client.roles[name] = role
            return role.id

    def add_realm_role(self, name: str, *, realm: str | None = None) -> str:
        with self._lock:
            target = self._realm(realm)
            role = Role(id=str(uuid.uuid4()), name=name, container_id=target.id,
                        client_role=False)
            target.roles[name] = role
            return role.id

    def add_group(self, name: str, *, realm: str | None = None) -> str:
        with self._lock:
            group = Group(id=str(uuid.uuid4()), name=name)
            self._realm(realm).groups[group.id] = group
            return group.id

    def add_user(self, username: str, *, realm: str | None = None, enabled: bool = True,
                 first_name: str | None = None, last_name: str | None = None,
                 email: str | None = None, attributes: dict[str, list[str]] | None = None,
                 password: str | None = None, admin: bool = False) -> str:
        with self._lock:
            user = User(id=str(uuid.uuid4()), username=username.lower(),
                        created=int(self._clock() * 1000), enabled=enabled,
                        first_name=first_name, last_name=last_name,
                        email=email.lower() if email else None,
                        attributes=dict(attributes or {}), password=password, admin=admin)
            self._realm(realm).users[user.id] = user
            return user.id

    def user(self, user_id: str, *, realm: str | None = None) -> User | None:
        with self._lock:
            return self._realm(realm).users.get(user_id)

    def user_by_username(self, username: str, *, realm: str | None = None) -> User | None:
        with self._lock:
            return self._realm(realm).user_by_username(username)

    def group_members(self, group_id: str, *, realm: str | None = None) -> set[str]:
        with self._lock:
            return {u.username for u in self._realm(realm).users.values()
                    if group_id in u.groups}

    def realm_roles_of(self, user_id: str, *, realm: str | None = None) -> set[str]:
        with self._lock:
            target = self._realm(realm)
            ids = target.users[user_id].realm_roles
            return {r.name for r in target.roles.values() if r.id in ids}

    def client_roles_of(self, user_id: str, client_id: str, *,
                        realm: str | None = None) -> set[str]:
        with self._lock:
            target = self._realm(realm)
            client = target.client_by_client_id(client_id)
            assert client is not None
            ids = target.users[user_id].client_roles.get(client.id, set())
            return {r.name for r in client.roles.values() if r.id in ids}

    def admin_calls(self, method: str | None = None) -> list[tuple[str, str]]:
        """The recorded admin API calls (not the token endpoint), optionally of one verb."""
        with self._lock:
            return [c for c in self.calls if "/admin/" in c[1]
                    and (method is None or c[0] == method)]

    # ---- fault injection ---------------------------------------------------------------------

    def throttle(self, *, retry_after: int = 5, count: int = 1) -> None:
        """The next ``count`` requests answer 429 with ``Retry-After``."""
        self.fail_next(429, {"error": "Too many requests"}, count=count,
                       headers={"Retry-After": str(retry_after)})

    def fail_next(self, status: int, body: Any = None, *, count: int = 1,
                  headers: dict[str, str] | None = None) -> None:
        """The next ``count`` requests answer ``status`` with ``body`` (JSON, or text)."""
        with self._lock:
            self._faults.append(_Fault(status, body, dict(headers or {}), count))

    def hold(self) -> None:
        """Requests wait (without answering) until :meth:`release`."""
        self._released.clear()

    def release(self) -> None:
        self._released.set()

    def expire_tokens(self) -> None:
        """Every access and refresh token issued so far expires."""
        with self._lock:
            for token in self.tokens.values():
                token.expires_at = 0.0

    # ---- the HTTP side ------------------------------------------------------------------------

    async def _gate(self, request: Request) -> Response | None:
        """Record the call and apply injected faults; a response short-circuits."""
        with self._lock:
            self.calls.append((request.method, request.url.path))
        if not self._released.is_set():
            with self._lock:
                self.held += 1
            await anyio.to_thread.run_sync(self._released.wait)
        if self.down:
            return PlainTextResponse("Service Unavailable", status_code=503)
        with self._lock:
            if self._faults:
                fault = self._faults[0]
                fault.remaining -= 1
                if fault.remaining <= 0:
                    self._faults.pop(0)
                if isinstance(fault.body, str) or fault.body is None:
                    return PlainTextResponse(fault.body or "", status_code=fault.status,
                                             headers=fault.headers)
                return JSONResponse(fault.body, status_code=fault.status,
                                    headers=fault.headers)
        return None

    def _authorise(self, request: Request, realm_name: str) -> Response | Realm:
        header = request.headers.get("authorization", "")
        scheme, _, value = header.partition(" ")
        token = self.tokens.get(value.strip()) if scheme.lower() == "bearer" else None
        if (token is None or token.kind != "access" or token.expires_at <= time.monotonic()):
            return JSONResponse({"error": "HTTP 401 Unauthorized"}, status_code=401)
        realm = self.realms.get(realm_name)
        if token.realm not in (realm_name, "master"):
            return JSONResponse({"error": "HTTP 401 Unauthorized"}, status_code=401)
        if not token.admin:
            return JSONResponse({"error": "HTTP 403 Forbidden"}, status_code=403)
        if realm is None:
            return _not_found("Realm not found.")
        return realm

    def _admin(self, handler: Callable[..., Response], *, body: bool = False) -> Handler:
        """Wrap an admin handler: faults, bearer token, realm, JSON body, the lock."""

        async def endpoint(request: Request) -> Response:
            refused = await self._gate(request)
            if refused is not None:
                return refused
            raw = await request.body()
            with self._lock:
                realm_or_error = self._authorise(request, request.path_params["realm"])
                if isinstance(realm_or_error, Response):
                    return realm_or_error
                try:
                    payload = _parse_json(request, raw) if body else None
                    return handler(request, realm_or_error, payload)
                except _BadBody as bad:
                    return bad.response

        return endpoint

    def _build_app(self) -> Starlette:
        a = self._admin
        prefix = "/admin/realms/{realm}"
        routes = [
            Route("/realms/{realm}/protocol/openid-connect/token", self._token,
                  methods=["POST"]),
            Route(prefix + "/users", a(self._users_list), methods=["GET"]),
            Route(prefix + "/users", a(self._users_create, body=True), methods=["POST"]),
            Route(prefix + "/users/count", a(self._users_count), methods=["GET"]),
            Route(prefix + "/users/{id}", a(self._user_get), methods=["GET"]),
            Route(prefix + "/users/{id}", a(self._user_update, body=True), methods=["PUT"]),
            Route(prefix + "/users/{id}", a(self._user_delete), methods=["DELETE"]),
            Route(prefix + "/users/{id}/groups", a(self._user_groups), methods=["GET"]),
            Route(prefix + "/users/{id}/groups/{group}", a(self._user_group_join),
                  methods=["PUT"]),
            Route(prefix + "/users/{id}/groups/{group}", a(self._user_group_leave),
                  methods=["DELETE"]),
            Route(prefix + "/users/{id}/role-mappings/realm", a(self._realm_mappings_get),
                  methods=["GET"]),
            Route(prefix + "/users/{id}/role-mappings/realm",
                  a(self._realm_mappings_add, body=True), methods=["POST"]),
            Route(prefix + "/users/{id}/role-mappings/realm",
                  a(self._realm_mappings_delete, body=True), methods=["DELETE"]),
            Route(prefix + "/users/{id}/role-mappings/clients/{client}",
                  a(self._client_mappings_get), methods=["GET"]),
            Route(prefix + "/users/{id}/role-mappings/clients/{client}",
                  a(self._client_mappings_add, body=True), methods=["POST"]),
            Route(prefix + "/users/{id}/role-mappings/clients/{client}",
                  a(self._client_mappings_delete, body=True), methods=["DELETE"]),
            Route(prefix + "/groups", a(self._groups_list), methods=["GET"]),
            Route(prefix + "/groups", a(self._groups_create, body=True), methods=["POST"]),
            Route(prefix + "/groups/{id}", a(self._group_get), methods=["GET"]),
            Route(prefix + "/groups/{id}", a(self._group_delete), methods=["DELETE"]),
            Route(prefix + "/groups/{id}/members", a(self._group_members), methods=["GET"]),
            Route(prefix + "/roles", a(self._roles_list), methods=["GET"]),
            Route(prefix + "/roles", a(self._roles_create, body=True), methods=["POST"]),
            Route(prefix + "/roles/{name}", a(self._role_get), methods=["GET"]),
            Route(prefix + "/roles/{name}/users", a(self._role_users), methods=["GET"]),
            Route(prefix + "/clients", a(self._clients_list), methods=["GET"]),
            Route(prefix + "/clients/{client}", a(self._client_get), methods=["GET"]),
            Route(prefix + "/clients/{client}/roles", a(self._client_roles_list),
                  methods=["GET"]),
            Route(prefix + "/clients/{client}/roles", a(self._client_roles_create, body=True),
                  methods=["POST"]),
            Route(prefix + "/clients/{client}/roles/{name}", a(self._client_role_get),
                  methods=["GET"]),
            Route(prefix + "/clients/{client}/roles/{name}/users", a(self._client_role_users),
                  methods=["GET"]),
        ]

        async def http_error(request: Request, exc: Exception) -> Response:
            assert isinstance(exc, HTTPException)
            if exc.status_code == 404:
                return JSONResponse({"error": "Unable to find matching target resource method"},
                                    status_code=404)
            return JSONResponse({"error": f"HTTP {exc.status_code} {exc.detail}"},
                                status_code=exc.status_code, headers=exc.headers)

        return Starlette(routes=routes, exception_handlers={HTTPException: http_error})

    # ---- token endpoint ----------------------------------------------------------------------

    async def _token(self, request: Request) -> Response:
        refused = await self._gate(request)
        if refused is not None:
            return refused
        if "application/x-www-form-urlencoded" not in request.headers.get("content-type", ""):
            return _oauth_error(400, "invalid_request", "Content-Type must be form encoded")
        fields = dict(parse_qsl((await request.body()).decode("utf-8", "replace"),
                                keep_blank_values=True))
        with self._lock:
            realm = self.realms.get(request.path_params["realm"])
            if realm is None:
                return JSONResponse({"error": "Realm does not exist"}, status_code=404)
            grant = fields.get("grant_type", "")
            client = realm.client_by_client_id(fields.get("client_id", ""))
            if client is None:
                return _oauth_error(401, "invalid_client",
                                    "Invalid client or Invalid client credentials")
            if not client.public and (client.secret is None
                                      or fields.get("client_secret") != client.secret):
                return _oauth_error(401, "unauthorized_client",
                                    "Invalid client or Invalid client credentials")
            if grant == "client_credentials":
                if client.public or not client.service_account:
                    return _oauth_error(401, "unauthorized_client",
                                        "Client not enabled to retrieve service account")
                return self._issue(realm.name, client.client_id, client.admin, refresh=False)
            if grant == "password":
                user = realm.user_by_username(fields.get("username", ""))
                if user is None or user.password is None or \
                        fields.get("password") != user.password or not user.enabled:
                    return _oauth_error(401, "invalid_grant", "Invalid user credentials")
                return self._issue(realm.name, client.client_id, user.admin, refresh=True)
            if grant == "refresh_token":
                old = self.tokens.get(fields.get("refresh_token", ""))
                if old is None or old.kind != "refresh" or old.expires_at <= time.monotonic() \
                        or old.client_id != client.client_id or old.realm != realm.name:
                    return _oauth_error(400, "invalid_grant", "Token is not active")
                return self._issue(realm.name, client.client_id, old.admin, refresh=True)
            return _oauth_error(400, "unsupported_grant_type", "Unsupported grant_type")

    def _issue(self, realm: str, client_id: str, admin: bool, *, refresh: bool) -> Response:
        access = "emu-at." + secrets.token_urlsafe(24)
        expires = time.monotonic() + TOKEN_LIFETIME_SECONDS
        self.tokens[access] = Token(realm, client_id, admin, expires)
        body: dict[str, Any] = {"access_token": access, "expires_in": TOKEN_LIFETIME_SECONDS,
                                "refresh_expires_in": 0, "token_type": "Bearer",
                                "not-before-policy": 0, "scope": "openid profile email"}
        if refresh:
            refresh_token = "emu-rt." + secrets.token_urlsafe(24)
            self.tokens[refresh_token] = Token(realm, client_id, admin,
                                               expires + TOKEN_LIFETIME_SECONDS, kind="refresh")
            body["refresh_token"] = refresh_token
            body["refresh_expires_in"] = 2 * TOKEN_LIFETIME_SECONDS
            body["session_state"] = str(uuid.uuid4())
        return JSONResponse(body, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})

    # ---- users -------------------------------------------------------------------------------

    @staticmethod
    def _location(request: Request, *parts: str) -> dict[str, str]:
        base = str(request.base_url).rstrip("/")
        realm = request.path_params["realm"]
        tail = "/".join(quote(p, safe="") for p in parts)
        return {"Location": f"{base}/admin/realms/{realm}/{tail}"}

    @staticmethod
    def _user_or_404(realm: Realm, request: Request) -> User:
        user = realm.users.get(request.path_params["id"])
        if user is None:
            raise _BadBody(_not_found("User not found"))
        return user

    @staticmethod
    def _attributes(value: Any) -> dict[str, list[str]]:
        if not isinstance(value, dict) or not all(
                isinstance(v, list) and all(isinstance(x, str) for x in v)
                for v in value.values()):
            raise _BadBody(_error(400, "unable to read contents from stream"))
        return {k: list(v) for k, v in value.items()}

    def _apply_user(self, realm: Realm, user: User, payload: dict[str, Any]) -> None:
        """Validate and apply a UserRepresentation (absent fields unchanged)."""
        for name in ("firstName", "lastName", "email"):
            if name in payload and payload[name] is not None and \
                    not isinstance(payload[name], str):
                raise _BadBody(_error(400, "unable to read contents from stream"))
        for name in ("enabled", "emailVerified"):
            if name in payload and payload[name] is not None and \
                    not isinstance(payload[name], bool):
                raise _BadBody(_error(400, "unable to read contents from stream"))
        email = payload.get("email")
        if email:
            email = email.lower()
            if not EMAIL.match(email):
                raise _BadBody(_error(400, "error-invalid-email", field="email",
                                      params=["email", email]))
            if not realm.duplicate_emails_allowed and any(
                    u.email == email and u.id != user.id for u in realm.users.values()):
                raise _BadBody(_error(409, "User exists with same email"))
        actions = payload.get("requiredActions")
        if actions is not None and (not isinstance(actions, list) or not all(
                a in REQUIRED_ACTIONS for a in actions)):
            raise _BadBody(_error(400, "error-invalid-value", field="requiredActions"))
        attributes = None
        if payload.get("attributes") is not None:
            attributes = self._attributes(payload["attributes"])
        # All checks passed: apply.
        if payload.get("firstName") is not None:
            user.first_name = payload["firstName"] or None
        if payload.get("lastName") is not None:
            user.last_name = payload["lastName"] or None
        if "email" in payload and payload["email"] is not None:
            user.email = email or None
        if payload.get("enabled") is not None:
            user.enabled = payload["enabled"]
        if payload.get("emailVerified") is not None:
            user.email_verified = payload["emailVerified"]
        if actions is not None:
            user.required_actions = list(actions)
        if attributes is not None:
            user.attributes = attributes

    def _users_create(self, request: Request, realm: Realm, payload: Any) -> Response:
        _check_fields(payload, USER_FIELDS)
        username = payload.get("username")
        if not isinstance(username, str) or not username.strip():
            return _error(400, "error-user-attribute-required", field="username",
                          params=["username"])
        username = username.strip().lower()
        if realm.user_by_username(username) is not None:
            return _error(409, "User exists with same username")
        groups: list[Group] = []
        for path in payload.get("groups") or []:
            group = next((g for g in realm.groups.values() if f"/{g.name}" == path), None)
            if group is None:
                return _error(400, f"Group {path} not found")
            groups.append(group)
        user = User(id=str(uuid.uuid4()), username=username,
                    created=int(self._clock() * 1000))
        self._apply_user(realm, user, payload)
        credentials = payload.get("credentials") or []
        for credential in credentials:
            if isinstance(credential, dict) and credential.get("type") == "password":
                user.password = str(credential.get("value", ""))
                if credential.get("temporary"):
                    user.required_actions.append("UPDATE_PASSWORD")
        user.groups = {g.id for g in groups}
        realm.users[user.id] = user
        return Response(status_code=201, headers=self._location(request, "users", user.id))

    def _search_users(self, realm: Realm, request: Request) -> list[User]:
        users = sorted(realm.users.values(), key=lambda u: u.username)
        exact = _flag(request, "exact")

        def matches(have: str | None, wanted: str) -> bool:
            have_l, wanted_l = (have or "").lower(), wanted.lower()
            return have_l == wanted_l if exact else wanted_l in have_l

        for param, attr in (("username", "username"), ("email", "email"),
                            ("firstName", "first_name"), ("lastName", "last_name")):
            wanted = request.query_params.get(param)
            if wanted is not None:
                users = [u for u in users if matches(getattr(u, attr), wanted)]
        search = request.query_params.get("search")
        if search is not None and search.strip() not in ("", "*"):
            term = search.strip().strip("*").lower()
            users = [u for u in users if any(term in (v or "").lower() for v in (
                u.username, u.email, u.first_name, u.last_name))]
        enabled = request.query_params.get("enabled")
        if enabled is not None:
            users = [u for u in users if u.enabled == (enabled.lower() == "true")]
        query = request.query_params.get("q")
        if query:
            for pair in query.split():
                key, _, value = pair.partition(":")
                users = [u for u in users if value in u.attributes.get(key, [])]
        return users

    def _users_list(self, request: Request, realm: Realm, _: Any) -> Response:
        brief = _flag(request, "briefRepresentation")
        users = _page(self._search_users(realm, request), request, 100)
        return JSONResponse([u.representation(brief=brief) for u in users])

    def _users_count(self, request: Request, realm: Realm, _: Any) -> Response:
        return JSONResponse(len(self._search_users(realm, request)))

    def _user_get(self, request: Request, realm: Realm, _: Any) -> Response:
        return JSONResponse(self._user_or_404(realm, request).representation())

    def _user_update(self, request: Request, realm: Realm, payload: Any) -> Response:
        _check_fields(payload, USER_FIELDS)
        user = self._user_or_404(realm, request)
        username = payload.get("username")
        if username is not None and str(username).lower() != user.username:
            return _error(400, "error-user-attribute-read-only", field="username",
                          params=["username"])
        self._apply_user(realm, user, payload)
        return Response(status_code=204)

    def _user_delete(self, request: Request, realm: Realm, _: Any) -> Response:
        user = self._user_or_404(realm, request)
        del realm.users[user.id]
        return Response(status_code=204)

    # ---- group membership --------------------------------------------------------------------

    def _group_or_404(self, realm: Realm, group_id: str) -> Group:
        group = realm.groups.get(group_id)
        if group is None:
            raise _BadBody(_not_found("Group not found"))
        return group

    def _user_groups(self, request: Request, realm: Realm, _: Any) -> Response:
        user = self._user_or_404(realm, request)
        groups = sorted((realm.groups[g] for g in user.groups if g in realm.groups),
                        key=lambda g: g.name)
        search = request.query_params.get("search")
        if search:
            groups = [g for g in groups if search.lower() in g.name.lower()]
        groups = _page(groups, request, 100)
        return JSONResponse([{"id": g.id, "name": g.name, "path": f"/{g.name}"}
                             for g in groups])

    def _user_group_join(self, request: Request, realm: Realm, _: Any) -> Response:
        user = self._user_or_404(realm, request)
        group = self._group_or_404(realm, request.path_params["group"])
        user.groups.add(group.id)
        return Response(status_code=204)

    def _user_group_leave(self, request: Request, realm: Realm, _: Any) -> Response:
        user = self._user_or_404(realm, request)
        group = self._group_or_404(realm, request.path_params["group"])
        user.groups.discard(group.id)
        return Response(status_code=204)

    # ---- role mappings -----------------------------------------------------------------------

    @staticmethod
    def _roles_from(payload: Any, available: Iterable[Role]) -> list[Role]:
        """The roles a role-mapping body names; each must match by name *and* id."""
        if not isinstance(payload, list):
            raise _BadBody(_error(400, "unable to read contents from stream"))
        by_name = {r.name: r for r in available}
        roles = []
        for item in payload:
            _check_fields(item, ROLE_FIELDS)
            role = by_name.get(item.get("name"))
            if role is None or role.id != item.get("id"):
                raise _BadBody(_not_found("Role not found"))
            roles.append(role)
        return roles

    def _realm_mappings_get(self, request: Request, realm: Realm, _: Any) -> Response:
        user = self._user_or_404(realm, request)
        roles = sorted((r for r in realm.roles.values() if r.id in user.realm_roles),
                       key=lambda r: r.name)
        return JSONResponse([r.representation() for r in roles])

    def _realm_mappings_add(self, request: Request, realm: Realm, payload: Any) -> Response:
        user = self._user_or_404(realm, request)
        for role in self._roles_from(payload, realm.roles.values()):
            user.realm_roles.add(role.id)
        return Response(status_code=204)

    def _realm_mappings_delete(self, request: Request, realm: Realm, payload: Any) -> Response:
        user = self._user_or_404(realm, request)
        for role in self._roles_from(payload, realm.roles.values()):
            user.realm_roles.discard(role.id)
        return Response(status_code=204)

    def _client_or_404(self, realm: Realm, request: Request) -> Client:
        client = realm.clients.get(request.path_params["client"])
        if client is None:
            raise _BadBody(_not_found("Client not found"))
        return client

    def _client_mappings_get(self, request: Request, realm: Realm, _: Any) -> Response:
        user = self._user_or_404(realm, request)
        client = self._client_or_404(realm, request)
        held = user.client_roles.get(client.id, set())
        roles = sorted((r for r in client.roles.values() if r.id in held), key=lambda r: r.name)
        return JSONResponse([r.representation() for r in roles])

    def _client_mappings_add(self, request: Request, realm: Realm, payload: Any) -> Response:
        user = self._user_or_404(realm, request)
        client = self._client_or_404(realm, request)
        for role in self._roles_from(payload, client.roles.values()):
            user.client_roles.setdefault(client.id, set()).add(role.id)
        return Response(status_code=204)

    def _client_mappings_delete(self, request: Request, realm: Realm, payload: Any) -> Response:
        user = self._user_or_404(realm, request)
        client = self._client_or_404(realm, request)
        for role in self._roles_from(payload, client.roles.values()):
            user.client_roles.get(client.id, set()).discard(role.id)
        return Response(status_code=204)

    # ---- groups ------------------------------------------------------------------------------

    def _groups_list(self, request: Request, realm: Realm, _: Any) -> Response:
        groups = sorted(realm.groups.values(), key=lambda g: g.name)
        search = request.query_params.get("search")
        if search:
            exact = _flag(request, "exact")
            groups = [g for g in groups if (g.name == search if exact
                                            else search.lower() in g.name.lower())]
        brief = _flag(request, "briefRepresentation", default=True)
        out = []
        for group in _page(groups, request, None):
            rep = group.representation()
            if brief:
                rep.pop("attributes")
                rep.pop("realmRoles")
                rep.pop("clientRoles")
            out.append(rep)
        return JSONResponse(out)

    def _groups_create(self, request: Request, realm: Realm, payload: Any) -> Response:
        _check_fields(payload, GROUP_FIELDS)
        name = payload.get("name")
        if not isinstance(name, str) or not name.strip():
            return _error(400, "Group name is missing")
        if any(g.name == name for g in realm.groups.values()):
            return _error(409, f"Top level group named '{name}' already exists.")
        group = Group(id=str(uuid.uuid4()), name=name,
                      attributes=self._attributes(payload.get("attributes") or {}))
        realm.groups[group.id] = group
        return Response(status_code=201, headers=self._location(request, "groups", group.id))

    def _group_get(self, request: Request, realm: Realm, _: Any) -> Response:
        return JSONResponse(self._group_or_404(realm, request.path_params["id"])
                            .representation())

    def _group_delete(self, request: Request, realm: Realm, _: Any) -> Response:
        group = self._group_or_404(realm, request.path_params["id"])
        del realm.groups[group.id]
        for user in realm.users.values():
            user.groups.discard(group.id)
        return Response(status_code=204)

    def _group_members(self, request: Request, realm: Realm, _: Any) -> Response:
        group = self._group_or_404(realm, request.path_params["id"])
        brief = _flag(request, "briefRepresentation")
        members = sorted((u for u in realm.users.values() if group.id in u.groups),
                         key=lambda u: u.username)
        return JSONResponse([u.representation(brief=brief)
                             for u in _page(members, request, 100)])

    # ---- realm roles -------------------------------------------------------------------------

    def _roles_list(self, request: Request, realm: Realm, _: Any) -> Response:
        roles = sorted(realm.roles.values(), key=lambda r: r.name)
        search = request.query_params.get("search")
        if search:
            roles = [r for r in roles if search.lower() in r.name.lower()]
        return JSONResponse([r.representation() for r in _page(roles, request, None)])

    def _create_role(self, request: Request, container: dict[str, Role], container_id: str,
                     client_role: bool, payload: Any, *location: str) -> Response:
        _check_fields(payload, ROLE_FIELDS)
        name = payload.get("name")
        if not isinstance(name, str) or not name.strip():
            return _error(400, "Role name is missing")
        if name in container:
            return _error(409, f"Role with name {name} already exists")
        container[name] = Role(id=str(uuid.uuid4()), name=name, container_id=container_id,
                               client_role=client_role,
                               description=str(payload.get("description") or ""))
        return Response(status_code=201, headers=self._location(request, *location, name))

    def _roles_create(self, request: Request, realm: Realm, payload: Any) -> Response:
        return self._create_role(request, realm.roles, realm.id, False, payload, "roles")

    def _role_get(self, request: Request, realm: Realm, _: Any) -> Response:
        role = realm.roles.get(request.path_params["name"])
        if role is None:
            return _not_found("Could not find role")
        return JSONResponse(role.representation())

    def _role_users(self, request: Request, realm: Realm, _: Any) -> Response:
        role = realm.roles.get(request.path_params["name"])
        if role is None:
            return _not_found("Could not find role")
        brief = _flag(request, "briefRepresentation", default=True)
        users = sorted((u for u in realm.users.values() if role.id in u.realm_roles),
                       key=lambda u: u.username)
        return JSONResponse([u.representation(brief=brief)
                             for u in _page(users, request, 100)])

    # ---- clients and client roles ------------------------------------------------------------

    def _clients_list(self, request: Request, realm: Realm, _: Any) -> Response:
        clients = sorted(realm.clients.values(), key=lambda c: c.client_id)
        wanted = request.query_params.get("clientId")
        if wanted is not None:
            if _flag(request, "search"):
                clients = [c for c in clients if wanted.lower() in c.client_id.lower()]
            else:
                clients = [c for c in clients if c.client_id == wanted]
        return JSONResponse([c.representation() for c in _page(clients, request, None)])

    def _client_get(self, request: Request, realm: Realm, _: Any) -> Response:
        return JSONResponse(self._client_or_404(realm, request).representation())

    def _client_roles_list(self, request: Request, realm: Realm, _: Any) -> Response:
        client = self._client_or_404(realm, request)
        roles = sorted(client.roles.values(), key=lambda r: r.name)
        search = request.query_params.get("search")
        if search:
            roles = [r for r in roles if search.lower() in r.name.lower()]
        return JSONResponse([r.representation() for r in _page(roles, request, None)])

    def _client_roles_create(self, request: Request, realm: Realm, payload: Any) -> Response:
        client = self._client_or_404(realm, request)
        return self._create_role(request, client.roles, client.id, True, payload,
                                 "clients", client.id, "roles")

    def _client_role_get(self, request: Request, realm: Realm, _: Any) -> Response:
        client = self._client_or_404(realm, request)
        role = client.roles.get(request.path_params["name"])
        if role is None:
            return _not_found("Could not find role")
        return JSONResponse(role.representation())

    def _client_role_users(self, request: Request, realm: Realm, _: Any) -> Response:
        client = self._client_or_404(realm, request)
        role = client.roles.get(request.path_params["name"])
        if role is None:
            return _not_found("Could not find role")
        users = sorted((u for u in realm.users.values()
                        if role.id in u.client_roles.get(client.id, set())),
                       key=lambda u: u.username)
        brief = _flag(request, "briefRepresentation", default=True)
        return JSONResponse([u.representation(brief=brief)
                             for u in _page(users, request, 100)])
