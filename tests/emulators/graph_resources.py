"""The Graph emulator's ``/v1.0`` resources: users, app role assignments, service principals,
groups and their members, with the routing, ``$select`` and paging they share.

:class:`GraphResources` is a mixin of :class:`tests.emulators.graph.GraphEmulator`, which owns
the state, authenticates each request and hands ``/v1.0`` paths to :meth:`_graph`.
"""

from __future__ import annotations

import base64
import re
import secrets
import uuid
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote

from tests.emulators.graph_auth_methods import GraphAuthMethods
from tests.emulators.graph_model import (
    DEFAULT_PAGE,
    GROUP_DEFAULT,
    MAX_TOP,
    USER_DEFAULT,
    USER_READABLE,
    USER_REQUIRED,
    USER_WRITABLE,
    GraphError,
    Reply,
    _bad,
    _complex_enough,
    _not_found,
)


class GraphResources(GraphAuthMethods):
    """The ``/v1.0`` resource handlers over the emulator's state."""

    domains: tuple[str, ...]
    users: dict[str, dict[str, Any]]
    password_profiles: dict[str, dict[str, Any]]
    received_passwords: list[str]
    groups: dict[str, dict[str, Any]]
    members: dict[str, list[str]]
    service_principals: dict[str, dict[str, Any]]
    assignments: dict[str, dict[str, Any]]

    # Provided by GraphEmulator.
    def _need(self, *any_of: str) -> None:
        raise NotImplementedError

    def user_by_upn(self, upn: str) -> dict[str, Any] | None:
        raise NotImplementedError

    def _graph(self, method: str, path: str, query: dict[str, str], data: Any,
               base: str) -> Reply:
        unknown = {k for k in query if k not in ("$top", "$select", "$skiptoken")}
        if unknown:
            raise _bad(f"Query option '{sorted(unknown)[0]}' is not supported by this "
                       "emulator.", "BadRequest")
        parts = [p for p in path.split("/") if p]
        routes: list[tuple[str, tuple[str, ...], Callable[..., Reply]]] = [
            ("GET", ("users",), self._list_users),
            ("POST", ("users",), self._create_user),
            ("GET", ("users", "*"), self._get_user),
            ("PATCH", ("users", "*"), self._patch_user),
            ("DELETE", ("users", "*"), self._delete_user),
            ("GET", ("users", "*", "appRoleAssignments"), self._list_assignments),
            ("POST", ("users", "*", "appRoleAssignments"), self._assign),
            ("DELETE", ("users", "*", "appRoleAssignments", "*"), self._unassign),
            ("GET", ("users", "*", "authentication", "temporaryAccessPassMethods"),
             self._list_taps),
            ("POST", ("users", "*", "authentication", "temporaryAccessPassMethods"),
             self._create_tap),
            ("DELETE", ("users", "*", "authentication", "temporaryAccessPassMethods", "*"),
             self._delete_tap),
            ("GET", ("groups",), self._list_groups),
            ("GET", ("groups", "*"), self._get_group),
            ("GET", ("groups", "*", "members"), self._list_members),
            ("POST", ("groups", "*", "members", "$ref"), self._add_member),
            ("DELETE", ("groups", "*", "members", "*", "$ref"), self._remove_member),
            ("GET", ("servicePrincipals", "*"), self._get_sp),
            ("GET", ("servicePrincipals", "*", "appRoleAssignedTo"), self._sp_assigned),
        ]
        matched_path = False
        for verb, shape, handler in routes:
            if len(shape) == len(parts) and all(s in ("*", p) for s, p in zip(shape, parts,
                                                                                 strict=True)):
                matched_path = True
                if verb == method:
                    args = [p for s, p in zip(shape, parts, strict=True) if s == "*"]
                    return handler(*args, query=query, data=data, base=base)
        if matched_path:
            raise GraphError(405, "Request_BadRequest",
                             f"The HTTP method '{method}' is not allowed for this resource.")
        raise GraphError(400, "BadRequest", f"Resource not found for the segment "
                         f"'{parts[-1] if parts else ''}'.")

    # helpers

    @staticmethod
    def _select(query: Mapping[str, str], default: tuple[str, ...],
                readable: frozenset[str] | set[str], type_name: str) -> tuple[str, ...]:
        if "$select" not in query:
            return default
        names = tuple(n.strip() for n in query["$select"].split(",") if n.strip())
        for name in names:
            if name not in readable:
                raise _bad(f"Could not find a property named '{name}' on type "
                           f"'microsoft.graph.{type_name}'.")
        return names

    def _page(self, items: list[dict[str, Any]], query: Mapping[str, str], base: str,
              path: str, context: str) -> Reply:
        top_text = query.get("$top", str(DEFAULT_PAGE))
        if not top_text.isdigit() or not 1 <= int(top_text) <= MAX_TOP:
            raise _bad(f"Invalid page size specified: '{top_text}'. Must be between 1 and "
                       f"{MAX_TOP} inclusive.", "Request_UnsupportedQuery")
        top = int(top_text)
        start = 0
        if "$skiptoken" in query:
            try:
                start = int(base64.urlsafe_b64decode(query["$skiptoken"].encode()).decode())
            except ValueError:
                raise _bad("Invalid $skiptoken.", "Directory_InvalidPagingToken") from None
        body: dict[str, Any] = {"@odata.context": f"{base}/v1.0/$metadata#{context}",
                                "value": items[start:start + top]}
        if start + top < len(items):
            token = base64.urlsafe_b64encode(str(start + top).encode()).decode()
            keep = "".join(f"&{k}={quote(v, safe=',')}" for k, v in query.items()
                           if k not in ("$top", "$skiptoken"))
            body["@odata.nextLink"] = f"{base}/v1.0{path}?$top={top}{keep}&$skiptoken={token}"
        return Reply(200, body)

    def _user(self, key: str) -> dict[str, Any]:
        user = self.users.get(key.casefold()) or self.user_by_upn(key)
        if user is None:
            raise _not_found(key)
        return user

    def _user_view(self, user: Mapping[str, Any], fields: tuple[str, ...]) -> dict[str, Any]:
        if "signInActivity" in fields:
            self._need("AuditLog.Read.All")
        return {name: user.get(name) for name in fields}

    def _check_user_body(self, data: Any, *, creating: bool) -> dict[str, Any]:
        if not isinstance(data, dict):
            raise _bad("Invalid request body.", "BadRequest")
        profile = data.get("passwordProfile")
        if isinstance(profile, dict) and isinstance(profile.get("password"), str):
            self.received_passwords.append(profile["password"])
        for name in data:
            if name not in USER_WRITABLE:
                raise _bad(f"Property '{name}' does not exist as a declared property or "
                           "extension property.")
        for name, value in data.items():
            ok = {"accountEnabled": isinstance(value, bool),
                  "passwordProfile": isinstance(value, dict),
                  "businessPhones": isinstance(value, list),
                  "otherMails": isinstance(value, list)}.get(
                      name, value is None or isinstance(value, str))
            if not ok or (value == "" and name in USER_REQUIRED):
                raise _bad(f"Invalid value specified for property '{name}' of resource "
                           "'User'.")
        if creating:
            for name in USER_REQUIRED:
                if data.get(name) is None:
                    raise _bad(f"Invalid value specified for property '{name}' of resource "
                               "'User'.")
        if "userPrincipalName" in data:
            upn = str(data["userPrincipalName"])
            local, at, domain = upn.rpartition("@")
            if not at or not local or domain.casefold() not in self.domains:
                raise _bad("The domain portion of the userPrincipalName property is invalid. "
                           "You must use one of the verified domain names in your "
                           "organization.")
        if "passwordProfile" in data:
            profile = data["passwordProfile"]
            if set(profile) - {"password", "forceChangePasswordNextSignIn",
                               "forceChangePasswordNextSignInWithMfa"}:
                raise _bad("Invalid property in passwordProfile.")
            if not isinstance(profile.get("password"), str) or \
                    not _complex_enough(profile["password"]):
                raise _bad("The specified password does not comply with password complexity "
                           "requirements. Please provide a different password.")
        return data

    def _conflict(self, upn: str, except_id: str | None = None) -> None:
        other = self.user_by_upn(upn)
        if other is not None and other["id"] != except_id:
            raise GraphError(400, "Request_BadRequest", "Another object with the same value for "
                             "property userPrincipalName already exists.",
                             details=[{"code": "ObjectConflict",
                                       "message": "Another object with the same value for "
                                       "property userPrincipalName already exists.",
                                       "target": "userPrincipalName"}])

    # users

    def _list_users(self, *, query: Mapping[str, str], data: Any, base: str) -> Reply:
        self._need("User.ReadWrite.All", "User.Read.All")
        fields = self._select(query, USER_DEFAULT, USER_READABLE, "user")
        items = [self._user_view(u, fields) for u in self.users.values()]
        return self._page(items, query, base, "/users", "users")

    def _create_user(self, *, query: Mapping[str, str], data: Any, base: str) -> Reply:
        self._need("User.ReadWrite.All")
        body = self._check_user_body(data, creating=True)
        self._conflict(body["userPrincipalName"])
        user_id = str(uuid.uuid4())
        user = {k: v for k, v in body.items() if k != "passwordProfile"}
        user.update(id=user_id, createdDateTime="2026-01-15T09:00:00Z", signInActivity=None)
        self.users[user_id] = user
        self.password_profiles[user_id] = dict(body["passwordProfile"])
        view = self._user_view(user, USER_DEFAULT)
        return Reply(201, {"@odata.context": f"{base}/v1.0/$metadata#users/$entity", **view},
                     {"Location": f"{base}/v1.0/directoryObjects/{user_id}/Microsoft."
                                  "DirectoryServices.User"})

    def _get_user(self, key: str, *, query: Mapping[str, str], data: Any, base: str) -> Reply:
        self._need("User.ReadWrite.All", "User.Read.All")
        fields = self._select(query, USER_DEFAULT, USER_READABLE, "user")
        return Reply(200, {"@odata.context": f"{base}/v1.0/$metadata#users/$entity",
                           **self._user_view(self._user(key), fields)})

    def _patch_user(self, key: str, *, query: Mapping[str, str], data: Any,
                    base: str) -> Reply:
        self._need("User.ReadWrite.All")
        user = self._user(key)
        body = self._check_user_body(data, creating=False)
        if "userPrincipalName" in body:
            self._conflict(body["userPrincipalName"], except_id=user["id"])
        if "passwordProfile" in body:
            self.password_profiles[user["id"]] = dict(body["passwordProfile"])
        user.update({k: v for k, v in body.items() if k != "passwordProfile"})
        return Reply(204)

    def _delete_user(self, key: str, *, query: Mapping[str, str], data: Any,
                     base: str) -> Reply:
        self._need("User.ReadWrite.All")
        user = self._user(key)
        del self.users[user["id"]]
        self.password_profiles.pop(user["id"], None)
        for members in self.members.values():
            if user["id"] in members:
                members.remove(user["id"])
        for assignment_id in [a for a, v in self.assignments.items()
                              if v["principalId"] == user["id"]]:
            del self.assignments[assignment_id]
        return Reply(204)

    # app role assignments

    def _list_assignments(self, key: str, *, query: Mapping[str, str], data: Any,
                          base: str) -> Reply:
        self._need("AppRoleAssignment.ReadWrite.All", "Directory.Read.All")
        user = self._user(key)
        items = [a for a in self.assignments.values() if a["principalId"] == user["id"]]
        return self._page(items, query, base, f"/users/{user['id']}/appRoleAssignments",
                          f"users('{user['id']}')/appRoleAssignments")

    def _assign(self, key: str, *, query: Mapping[str, str], data: Any, base: str) -> Reply:
        self._need("AppRoleAssignment.ReadWrite.All")
        user = self._user(key)
        if not isinstance(data, dict) or set(data) != {"principalId", "resourceId",
                                                       "appRoleId"}:
            raise _bad("An appRoleAssignment needs exactly principalId, resourceId and "
                       "appRoleId.")
        if str(data["principalId"]).casefold() != user["id"]:
            raise _bad("The principalId does not match the user in the request URL.")
        sp = self.service_principals.get(str(data["resourceId"]).casefold())
        if sp is None:
            raise _not_found(str(data["resourceId"]))
        role = next((r for r in sp["appRoles"] if r["id"] == str(data["appRoleId"]).casefold()),
                    None)
        if role is None:
            raise _bad("Permission being assigned was not found on application '"
                       f"{sp['appId']}'.")
        for existing in self.assignments.values():
            if (existing["principalId"], existing["resourceId"], existing["appRoleId"]) == \
                    (user["id"], sp["id"], role["id"]):
                raise _bad("Permission being assigned already exists on the object")
        assignment_id = base64.urlsafe_b64encode(secrets.token_bytes(24)).decode().rstrip("=")
        assignment = {"id": assignment_id, "deletedDateTime": None, "appRoleId": role["id"],
                      "createdDateTime": "2026-01-15T09:00:00Z",
                      "principalDisplayName": user.get("displayName"),
                      "principalId": user["id"], "principalType": "User",
                      "resourceDisplayName": sp["displayName"], "resourceId": sp["id"]}
        self.assignments[assignment_id] = assignment
        return Reply(201, {"@odata.context": f"{base}/v1.0/$metadata#users('{user['id']}')/"
                                             "appRoleAssignments/$entity", **assignment})

    def _unassign(self, key: str, assignment_id: str, *, query: Mapping[str, str], data: Any,
                  base: str) -> Reply:
        self._need("AppRoleAssignment.ReadWrite.All")
        user = self._user(key)
        assignment = self.assignments.get(assignment_id)
        if assignment is None or assignment["principalId"] != user["id"]:
            raise _not_found(assignment_id)
        del self.assignments[assignment_id]
        return Reply(204)

    def _get_sp(self, key: str, *, query: Mapping[str, str], data: Any, base: str) -> Reply:
        self._need("Application.Read.All", "AppRoleAssignment.ReadWrite.All")
        sp = self.service_principals.get(key.casefold())
        if sp is None:
            raise _not_found(key)
        fields = self._select(query, ("id", "appId", "displayName", "appRoles"),
                              frozenset({"id", "appId", "displayName", "appRoles"}),
                              "servicePrincipal")
        return Reply(200, {"@odata.context": f"{base}/v1.0/$metadata#servicePrincipals/$entity",
                           **{f: sp[f] for f in fields}})

    def _sp_assigned(self, key: str, *, query: Mapping[str, str], data: Any,
                     base: str) -> Reply:
        self._need("Application.Read.All", "AppRoleAssignment.ReadWrite.All")
        if key.casefold() not in self.service_principals:
            raise _not_found(key)
        items = [a for a in self.assignments.values() if a["resourceId"] == key.casefold()]
        return self._page(items, query, base, f"/servicePrincipals/{key}/appRoleAssignedTo",
                          f"servicePrincipals('{key}')/appRoleAssignedTo")

    # groups

    def _group(self, key: str) -> dict[str, Any]:
        group = self.groups.get(key.casefold())
        if group is None:
            raise _not_found(key)
        return group

    def _list_groups(self, *, query: Mapping[str, str], data: Any, base: str) -> Reply:
        self._need("Group.Read.All", "GroupMember.ReadWrite.All")
        fields = self._select(query, GROUP_DEFAULT, frozenset(GROUP_DEFAULT), "group")
        items = [{f: g.get(f) for f in fields} for g in self.groups.values()]
        return self._page(items, query, base, "/groups", "groups")

    def _get_group(self, key: str, *, query: Mapping[str, str], data: Any, base: str) -> Reply:
        self._need("Group.Read.All", "GroupMember.ReadWrite.All")
        fields = self._select(query, GROUP_DEFAULT, frozenset(GROUP_DEFAULT), "group")
        group = self._group(key)
        return Reply(200, {"@odata.context": f"{base}/v1.0/$metadata#groups/$entity",
                           **{f: group.get(f) for f in fields}})

    def _list_members(self, key: str, *, query: Mapping[str, str], data: Any,
                      base: str) -> Reply:
        self._need("Group.Read.All", "GroupMember.ReadWrite.All")
        group = self._group(key)
        fields = self._select(query, USER_DEFAULT, USER_READABLE - {"signInActivity"},
                              "directoryObject")
        items = [{"@odata.type": "#microsoft.graph.user",
                  **self._user_view(self.users[m], fields)} for m in self.members[group["id"]]]
        return self._page(items, query, base, f"/groups/{group['id']}/members",
                          "directoryObjects")

    def _add_member(self, key: str, *, query: Mapping[str, str], data: Any,
                    base: str) -> Reply:
        self._need("GroupMember.ReadWrite.All")
        group = self._group(key)
        reference = data.get("@odata.id") if isinstance(data, dict) else None
        match = re.fullmatch(r"https://[^/]+/v1\.0/(?:directoryObjects|users)/([^/?#]+)",
                             reference) if isinstance(reference, str) and len(data) == 1 else None
        if match is None:
            raise _bad("Invalid object identifier '" + str(reference) + "'.")
        member = self._user(match.group(1))
        if member["id"] in self.members[group["id"]]:
            raise _bad("One or more added object references already exist for the following "
                       "modified properties: 'members'.")
        self.members[group["id"]].append(member["id"])
        return Reply(204)

    def _remove_member(self, key: str, member_id: str, *, query: Mapping[str, str], data: Any,
                       base: str) -> Reply:
        self._need("GroupMember.ReadWrite.All")
        group = self._group(key)
        if member_id.casefold() not in self.members[group["id"]]:
            raise _not_found(member_id)
        self.members[group["id"]].remove(member_id.casefold())
        return Reply(204)
