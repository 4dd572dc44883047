"""The Entra ID connector: users, group memberships and app role assignments in Graph.

- Accounts are users: ``native_id`` is the object id, ``username`` the userPrincipalName (a
  username without ``@`` gets ``settings["upn_domain"]``). A new user gets a random initial
  password with ``forceChangePasswordNextSignIn``; the password is never stored, logged or
  returned, and is blanked out of any error message. Disabling sets ``accountEnabled`` false.
- Entitlements are ``group:<group id>`` (membership through ``members/$ref``) and
  ``app-role:<resource service principal id>:<app role id>`` (an appRoleAssignment).
- Listings page with ``@odata.nextLink``: the cursor is the link itself (checked to point at
  the configured Graph before a token is sent to it); app roles of
  ``settings["app_role_resources"]`` follow the groups.
- 429 and 503 raise ``Throttled`` / ``TargetUnavailable`` with Graph's ``Retry-After``; the
  connector never sleeps, the engine schedules the retry.
- Beyond the protocol: :meth:`EntraConnector.grant_many` and :meth:`EntraConnector.revoke_many`
  send many changes in ``$batch`` calls of 20 and report one :class:`BatchResult` per item
  (each sub-request succeeds, fails or is throttled on its own). Callers look for them with
  ``getattr(connector, "grant_many", None)``.
- First access (``temporary_access_pass``): :meth:`EntraConnector.issue_temporary_access_pass`
  replaces any pass the user has (a user holds one at a time) with a new one
  (``POST /users/{id}/authentication/temporaryAccessPassMethods``, permission
  UserAuthenticationMethod.ReadWrite.All); the pass is returned once and blanked out of errors.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from connectors.base import (
    ALL_CAPABILITIES,
    CAN_TEMPORARY_ACCESS,
    AccountInfo,
    AccountRef,
    AccountSpec,
    EntitlementInfo,
    Page,
    TemporaryAccessPass,
)
from connectors.entra.config import EntraSettings
from connectors.entra.graph import Answer, GraphClient
from connectors.entra.mapping import (
    USER_SELECT,
    account_info,
    app_role_entitlement,
    graph_attributes,
    group_entitlement,
    initial_password,
    last_sign_in,
    new_user_body,
    object_id,
    parse_entitlement,
)
from connectors.errors import AuthenticationFailed, ConnectorError, DataError

MAX_TOP = 999
_APP_ROLE_CURSOR = "app-roles:"


@dataclass(frozen=True)
class BatchResult:
    """The outcome of one item of :meth:`EntraConnector.grant_many` / ``revoke_many``."""

    ref: AccountRef
    entitlement: str
    error: ConnectorError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def _already_there(answer: Answer) -> bool:
    # Graph answers 400 when the member or the app role assignment exists already.
    return answer.status == 400 and "already exist" in answer.error_message.casefold()


class EntraConnector:
    """Microsoft Entra ID through msal and Microsoft Graph; see the module's docstring."""

    kind = "entra"
    capabilities = ALL_CAPABILITIES | {CAN_TEMPORARY_ACCESS}

    def __init__(self, settings: Mapping[str, Any], credentials: Mapping[str, Any]) -> None:
        self._settings = EntraSettings.read(settings)
        secret = credentials.get("client_secret")
        if not isinstance(secret, str) or not secret:
            raise AuthenticationFailed("Entra credentials need a 'client_secret'")
        self._graph = GraphClient(self._settings, secret)
        self._list_sign_ins = bool(settings.get("list_sign_in_activity", False))

    def __repr__(self) -> str:
        return f"EntraConnector(authority={self._settings.authority!r})"

    # ---- helpers -----------------------------------------------------------------------------

    def _upn(self, username: str) -> str:
        if "@" in username:
            return username
        if self._settings.upn_domain:
            return f"{username}@{self._settings.upn_domain}"
        raise DataError(f"username '{username}' is not a userPrincipalName and no "
                        "'upn_domain' is configured")

    def _find_user(self, upn: str) -> dict[str, Any] | None:
        path = f"/users/{quote(upn, safe='@')}"
        answer = self._graph.send("GET", self._graph.url(path), params={"$select": USER_SELECT})
        if answer.status == 404:
            return None
        if answer.status >= 400:
            raise self._graph.error(answer, "GET /users/{userPrincipalName}")
        return dict(answer.body)

    def _same_person(self, existing: Mapping[str, Any], spec: AccountSpec) -> AccountRef:
        wanted = graph_attributes(spec.attributes)
        for name in self._settings.identifying_attributes:
            if name in wanted and \
                    str(existing.get(name) or "").casefold() != str(wanted[name]).casefold():
                raise DataError(f"userPrincipalName {existing['userPrincipalName']} is taken "
                                f"by another account (its {name} differs)")
        return AccountRef(native_id=str(existing["id"]),
                          username=str(existing["userPrincipalName"]))

    def _user_path(self, ref: AccountRef) -> str:
        return f"/users/{object_id(ref.native_id, 'account id')}"

    def _link(self, cursor: str) -> str:
        # A bearer token is sent to the cursor's URL: it must be our Graph's.
        if not cursor.startswith(self._settings.graph_url + "/"):
            raise DataError("the cursor is not a link of this Graph endpoint")
        return cursor

    def _all_pages(self, path: str, params: Mapping[str, str]) -> list[dict[str, Any]]:
        answer = self._graph.call("GET", path, params=params)
        items = list(answer.body.get("value", []))
        while link := answer.body.get("@odata.nextLink"):
            answer = self._graph.call("GET", path, url=self._link(str(link)))
            items.extend(answer.body.get("value", []))
        return items

    # ---- the protocol ------------------------------------------------------------------------

    def test_connection(self) -> None:
        """Get a token and read one user."""
        self._graph.call("GET", "/users", params={"$top": "1", "$select": "id"})

    def create_account(self, spec: AccountSpec) -> AccountRef:
        """Create the user unless its UPN exists; the existing user when it is the same
        person (the identifying attributes agree), DataError otherwise."""
        upn = self._upn(spec.username)
        existing = self._find_user(upn)
        if existing is not None:
            return self._same_person(existing, spec)
        password = initial_password()
        with self._graph.redacting(password):
            answer = self._graph.send("POST", self._graph.url("/users"),
                                      json=new_user_body(upn, spec.attributes, spec.enabled,
                                                         password))
            del password
            if answer.status == 201:
                return AccountRef(native_id=str(answer.body["id"]),
                                  username=str(answer.body["userPrincipalName"]))
            conflict = answer.status == 400 and "already exists" in answer.error_message
            if conflict and (existing := self._find_user(upn)) is not None:
                return self._same_person(existing, spec)  # created meanwhile
            raise self._graph.error(answer, "POST /users")

    def update_account(self, ref: AccountRef, attributes: Mapping[str, Any]) -> None:
        """PATCH the user's properties (directory-style names are translated)."""
        body = graph_attributes(attributes)
        if body:
            self._graph.call("PATCH", self._user_path(ref), json=body)

    def enable_account(self, ref: AccountRef) -> None:
        self._graph.call("PATCH", self._user_path(ref), json={"accountEnabled": True})

    def disable_account(self, ref: AccountRef) -> None:
        self._graph.call("PATCH", self._user_path(ref), json={"accountEnabled": False})

    def delete_account(self, ref: AccountRef) -> None:
        """Delete the user (to the directory's recycle bin); absent is success."""
        path = self._user_path(ref)
        answer = self._graph.send("DELETE", self._graph.url(path))
        if answer.status >= 400 and answer.status != 404:
            raise self._graph.error(answer, "DELETE /users/{id}")

    def grant(self, ref: AccountRef, entitlement: str) -> None:
        """Add the group member or the app role assignment; present already is success."""
        request = self._grant_request(ref, entitlement)
        answer = self._graph.send(request["method"], self._graph.url(request["url"]),
                                  json=request["body"])
        error = self._grant_outcome(answer)
        if error is not None:
            raise error

    def revoke(self, ref: AccountRef, entitlement: str) -> None:
        """Remove the membership or the assignment; absent is success."""
        kind, target, role = parse_entitlement(entitlement)
        user_id = object_id(ref.native_id, "account id")
        if kind == "group":
            answer = self._graph.send(
                "DELETE", self._graph.url(f"/groups/{target}/members/{user_id}/$ref"))
            error = self._revoke_outcome(answer)
            if error is not None:
                raise error
            return
        answer = self._graph.send("GET", self._graph.url(f"/users/{user_id}/appRoleAssignments"),
                                  params={"$top": str(MAX_TOP)})
        if answer.status == 404:
            return
        if answer.status >= 400:
            raise self._graph.error(answer, "GET /users/{id}/appRoleAssignments")
        for assignment_id in self._matching(answer, target, role):
            outcome = self._revoke_outcome(self._graph.send("DELETE", self._graph.url(
                f"/users/{user_id}/appRoleAssignments/{assignment_id}")))
            if outcome is not None:
                raise outcome

    def list_accounts(self, *, cursor: str | None = None,
                      page_size: int = 500) -> Page[AccountInfo]:
        """Users, ``page_size`` at a time (at most 999, Graph's limit)."""
        select = USER_SELECT + (",signInActivity" if self._list_sign_ins else "")
        if cursor:
            answer = self._graph.call("GET", "/users", url=self._link(cursor))
        else:
            answer = self._graph.call("GET", "/users", params={
                "$top": str(min(max(page_size, 1), MAX_TOP)), "$select": select})
        items = tuple(account_info(u) for u in answer.body.get("value", []))
        link = answer.body.get("@odata.nextLink")
        return Page(items=items, next_cursor=str(link) if link else None)

    def list_entitlements(self, *, cursor: str | None = None,
                          page_size: int = 500) -> Page[EntitlementInfo]:
        """Groups with their members, then the app roles of the configured resources."""
        if cursor and cursor.startswith(_APP_ROLE_CURSOR):
            return self._app_roles_page(cursor, page_size)
        if cursor:
            answer = self._graph.call("GET", "/groups", url=self._link(cursor))
        else:
            answer = self._graph.call("GET", "/groups", params={
                "$top": str(min(max(page_size, 1), MAX_TOP)), "$select": "id,displayName"})
        items = []
        for group in answer.body.get("value", []):
            group_id = object_id(str(group["id"]), "group id")
            members = self._all_pages(f"/groups/{group_id}/members",
                                      {"$select": "id", "$top": str(MAX_TOP)})
            items.append(EntitlementInfo(
                native_id=group_entitlement(group_id), name=str(group.get("displayName")),
                kind="group", members=tuple(str(m["id"]) for m in members
                                            if m.get("@odata.type") == "#microsoft.graph.user")))
        link = answer.body.get("@odata.nextLink")
        if link:
            next_cursor: str | None = str(link)
        else:
            next_cursor = f"{_APP_ROLE_CURSOR}0:0" if self._settings.app_role_resources else None
        return Page(items=tuple(items), next_cursor=next_cursor)

    def _app_roles_page(self, cursor: str, page_size: int) -> Page[EntitlementInfo]:
        try:
            index_text, _, offset_text = cursor[len(_APP_ROLE_CURSOR):].partition(":")
            index, offset = int(index_text), int(offset_text)
            resource = self._settings.app_role_resources[index]
        except (ValueError, IndexError):
            raise DataError("the cursor is not one of this connector's") from None
        resource_id = object_id(resource, "resource id")
        sp = self._graph.call("GET", f"/servicePrincipals/{resource_id}",
                              params={"$select": "id,displayName,appRoles"}).body
        roles = [r for r in sp.get("appRoles", [])
                 if r.get("isEnabled", True) and "User" in r.get("allowedMemberTypes", [])]
        size = max(page_size, 1)
        chosen = roles[offset:offset + size]
        assigned = self._all_pages(f"/servicePrincipals/{resource_id}/appRoleAssignedTo",
                                   {"$top": str(MAX_TOP)}) if chosen else []
        items = tuple(EntitlementInfo(
            native_id=app_role_entitlement(resource_id, str(role["id"])),
            name=f"{sp.get('displayName')}: {role.get('displayName') or role.get('value')}",
            kind="app-role",
            members=tuple(str(a["principalId"]) for a in assigned
                          if a.get("appRoleId") == role["id"]
                          and a.get("principalType") == "User")) for role in chosen)
        if offset + size < len(roles):
            next_cursor: str | None = f"{_APP_ROLE_CURSOR}{index}:{offset + size}"
        elif index + 1 < len(self._settings.app_role_resources):
            next_cursor = f"{_APP_ROLE_CURSOR}{index + 1}:0"
        else:
            next_cursor = None
        return Page(items=items, next_cursor=next_cursor)

    def last_sign_in(self, ref: AccountRef) -> datetime | None:
        """From ``signInActivity`` (needs AuditLog.Read.All and an Entra ID P1 licence)."""
        answer = self._graph.call("GET", self._user_path(ref),
                                  params={"$select": "id,signInActivity"})
        return last_sign_in(answer.body.get("signInActivity"))

    def close(self) -> None:
        self._graph.close()

    # ---- first access ------------------------------------------------------------------------

    def issue_temporary_access_pass(self, ref: AccountRef, *, lifetime_minutes: int,
                                    usable_once: bool,
                                    starts_at: datetime | None = None) -> TemporaryAccessPass:
        """A new temporary access pass for the user, any earlier one deleted first (Graph
        keeps one per user). DataError when Graph refuses the lifetime (outside the tenant's
        policy, or 10..43200 minutes) or the user is absent."""
        path = f"{self._user_path(ref)}/authentication/temporaryAccessPassMethods"
        for method in self._all_pages(path, {}):
            answer = self._graph.send("DELETE", self._graph.url(
                f"{path}/{object_id(str(method['id']), 'method id')}"))
            if answer.status >= 400 and answer.status != 404:
                raise self._graph.error(answer, "DELETE temporaryAccessPassMethods")
        body: dict[str, Any] = {"lifetimeInMinutes": int(lifetime_minutes),
                                "isUsableOnce": bool(usable_once)}
        if starts_at is not None:
            body["startDateTime"] = starts_at.astimezone(UTC).isoformat().replace("+00:00", "Z")
        made = self._graph.call("POST", path, json=body).body
        value = made.get("temporaryAccessPass") if isinstance(made, dict) else None
        if not isinstance(value, str) or not value:
            raise DataError("Graph created a temporary access pass without its value")
        started = made.get("startDateTime") or made.get("createdDateTime")
        return TemporaryAccessPass(
            value=value, method_id=str(made.get("id", "")),
            starts_at=datetime.fromisoformat(str(started)) if started else datetime.now(UTC),
            lifetime_minutes=int(made.get("lifetimeInMinutes", lifetime_minutes)),
            usable_once=bool(made.get("isUsableOnce", usable_once)))

    # ---- grants, one or many -----------------------------------------------------------------

    def _grant_request(self, ref: AccountRef, entitlement: str) -> dict[str, Any]:
        kind, target, role = parse_entitlement(entitlement)
        user_id = object_id(ref.native_id, "account id")
        if kind == "group":
            return {"method": "POST", "url": f"/groups/{target}/members/$ref",
                    "body": {"@odata.id": self._graph.url(f"/directoryObjects/{user_id}")}}
        return {"method": "POST", "url": f"/users/{user_id}/appRoleAssignments",
                "body": {"principalId": user_id, "resourceId": target, "appRoleId": role}}

    def _grant_outcome(self, answer: Answer) -> ConnectorError | None:
        if answer.status < 300 or _already_there(answer):
            return None
        return self._graph.error(answer, "grant")

    def _revoke_outcome(self, answer: Answer) -> ConnectorError | None:
        if answer.status < 300 or answer.status == 404:
            return None
        return self._graph.error(answer, "revoke")

    @staticmethod
    def _matching(answer: Answer, resource_id: str, role_id: str | None) -> list[str]:
        return [str(a["id"]) for a in (answer.body or {}).get("value", [])
                if a.get("resourceId") == resource_id and a.get("appRoleId") == role_id]

    def grant_many(self, items: Sequence[tuple[AccountRef, str]]) -> list[BatchResult]:
        """Grant many entitlements through ``$batch`` (20 per call); one result per item,
        in order. An item's error is what :meth:`grant` would have raised for it."""
        errors: list[ConnectorError | None] = [None] * len(items)
        planned: list[tuple[int, dict[str, Any]]] = []
        for n, (ref, entitlement) in enumerate(items):
            try:
                planned.append((n, self._grant_request(ref, entitlement)))
            except DataError as error:
                errors[n] = error
        answers = self._graph.batch([request for _, request in planned])
        for (n, _), answer in zip(planned, answers, strict=True):
            errors[n] = answer if isinstance(answer, ConnectorError) \
                else self._grant_outcome(answer)
        return [BatchResult(ref, entitlement, error)
                for (ref, entitlement), error in zip(items, errors, strict=True)]

    def revoke_many(self, items: Sequence[tuple[AccountRef, str]]) -> list[BatchResult]:
        """Revoke many entitlements through ``$batch``; one result per item, in order.
        App role assignments are looked up first (one batched GET per account)."""
        errors: list[ConnectorError | None] = [None] * len(items)
        parsed: dict[int, tuple[str, str, str | None, str]] = {}
        for n, (ref, entitlement) in enumerate(items):
            try:
                kind, target, role = parse_entitlement(entitlement)
                parsed[n] = (kind, target, role, object_id(ref.native_id, "account id"))
            except DataError as error:
                errors[n] = error
        users = sorted({p[3] for p in parsed.values() if p[0] == "app-role"})
        lookups = self._graph.batch([{"method": "GET", "url": f"/users/{u}/appRoleAssignments"
                                      f"?$top={MAX_TOP}"} for u in users])
        found = dict(zip(users, lookups, strict=True))
        deletes: list[tuple[int, dict[str, Any]]] = []
        for n, (kind, target, role, user_id) in parsed.items():
            if kind == "group":
                deletes.append((n, {"method": "DELETE",
                                    "url": f"/groups/{target}/members/{user_id}/$ref"}))
                continue
            lookup = found[user_id]
            if isinstance(lookup, ConnectorError):
                errors[n] = lookup
            elif lookup.status >= 400:
                errors[n] = self._revoke_outcome(lookup)
            else:
                deletes.extend((n, {"method": "DELETE", "url": f"/users/{user_id}/"
                                    f"appRoleAssignments/{assignment_id}"})
                               for assignment_id in self._matching(lookup, target, role))
        answers = self._graph.batch([request for _, request in deletes])
        for (n, _), answer in zip(deletes, answers, strict=True):
            outcome = answer if isinstance(answer, ConnectorError) \
                else self._revoke_outcome(answer)
            if errors[n] is None:
                errors[n] = outcome
        return [BatchResult(ref, entitlement, error)
                for (ref, entitlement), error in zip(items, errors, strict=True)]
