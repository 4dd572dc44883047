"""The Keycloak emulator's admin REST handlers (users, group membership, role mappings,
groups, realm roles, clients and client roles) and the helpers that shape Keycloak's answers.

:class:`KeycloakAdminHandlers` is a mixin of :class:`tests.emulators.keycloak.KeycloakEmulator`,
which owns the state, authorises each call and routes it here (under its lock).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import quote

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from tests.emulators.keycloak_model import (
    EMAIL,
    GROUP_FIELDS,
    REQUIRED_ACTIONS,
    ROLE_FIELDS,
    USER_FIELDS,
    Client,
    Group,
    Realm,
    Role,
    User,
)


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



class KeycloakAdminHandlers:
    """The admin API's handlers; each takes ``(request, realm, payload)`` and runs under the
    emulator's lock."""

    _clock: Callable[[], float]
    sent_emails: list[dict[str, Any]]
    smtp_configured: bool

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

    def _execute_actions_email(self, request: Request, realm: Realm, payload: Any) -> Response:
        """``PUT /users/{id}/execute-actions-email`` (Keycloak's UserResource, in its order of
        checks); the email is recorded in ``sent_emails`` instead of being sent."""
        user = self._user_or_404(realm, request)
        if not isinstance(payload, list) or not all(isinstance(a, str) for a in payload):
            return _error(400, "unable to read contents from stream")
        lifespan = _int(request, "lifespan", None)
        client_id = request.query_params.get("client_id")
        redirect_uri = request.query_params.get("redirect_uri")
        if not user.email:
            return _error(400, "User email missing")
        if not user.enabled:
            return _error(400, "User is disabled")
        if redirect_uri is not None and client_id is None:
            return _error(400, "Client id missing")
        if realm.client_by_client_id(client_id or "account") is None:
            return _error(400, "Client doesn't exist")
        if any(a not in REQUIRED_ACTIONS for a in payload):
            return _error(400, "Provided invalid required actions")
        if not self.smtp_configured:
            return _error(500, "Failed to send execute actions email")
        self.sent_emails.append({
            "user_id": user.id, "username": user.username, "email": user.email,
            "actions": list(payload), "lifespan": 43200 if lifespan is None else lifespan,
            "client_id": client_id or "account", "redirect_uri": redirect_uri})
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
