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
  idempotent); ``PUT /users/{id}/execute-actions-email`` (204; 400 "User email missing",
  "User is disabled", "Client doesn't exist", "Provided invalid required actions"; the
  email lands in ``sent_emails``; 500 when ``smtp_configured`` is false); role mappings
  ``POST``/``DELETE`` 204 with role representations whose ``id``
  and ``name`` must match a role (404 "Role not found" otherwise).
- Groups (top level), realm roles, clients and client roles, with their members.

Tests seed and inspect the state through methods (``add_group``, ``add_realm_role``,
``add_client``, ``add_client_role``, ``add_user``, ``user``, ``group_members``, ...) and inject
faults: ``down`` (503), ``throttle(retry_after)`` (429 with ``Retry-After``),
``fail_next(status, body)``, ``hold()``/``release()`` (requests wait until released: for
timeouts, without sleeping), ``expire_tokens()``. ``calls`` records every request.

The data model lives in :mod:`tests.emulators.keycloak_model`, the admin handlers in
:mod:`tests.emulators.keycloak_handlers`; this module holds the state, seeding, faults,
authorisation, routing and the token endpoint.
"""

from __future__ import annotations

import secrets
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl

import anyio.to_thread
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from tests.emulators.keycloak_handlers import (
    KeycloakAdminHandlers,
    _BadBody,
    _not_found,
    _oauth_error,
    _parse_json,
)
from tests.emulators.keycloak_model import (
    EMAIL,
    GROUP_FIELDS,
    REQUIRED_ACTIONS,
    ROLE_FIELDS,
    TOKEN_LIFETIME_SECONDS,
    USER_FIELDS,
    Client,
    Group,
    Realm,
    Role,
    Token,
    User,
    _Fault,
)

__all__ = [
    "EMAIL",
    "GROUP_FIELDS",
    "REQUIRED_ACTIONS",
    "ROLE_FIELDS",
    "TOKEN_LIFETIME_SECONDS",
    "USER_FIELDS",
    "Client",
    "Group",
    "Handler",
    "KeycloakEmulator",
    "Realm",
    "Role",
    "Token",
    "User",
]

Handler = Callable[[Request], Awaitable[Response]]


class KeycloakEmulator(KeycloakAdminHandlers):
    """The emulator's state and its Starlette application (``.app``)."""

    def __init__(self, *, realm: str = "idgov", client_id: str = "idgov-provisioner",
                 client_secret: str = "provisioner-secret",  # noqa: S107
                 clock: Callable[[], float] = time.time) -> None:
        self._lock = threading.RLock()
        self._clock = clock
        self.realms: dict[str, Realm] = {}
        self.tokens: dict[str, Token] = {}
        self.calls: list[tuple[str, str]] = []
        self.sent_emails: list[dict[str, Any]] = []  # execute-actions emails, as "sent"
        self.smtp_configured = True
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
            Route(prefix + "/users/{id}/execute-actions-email",
                  a(self._execute_actions_email, body=True), methods=["PUT"]),
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
