"""A strict emulator of the Microsoft Graph v1.0 subset the Entra connector uses, and of the
Microsoft identity platform's token endpoint, served over HTTPS by :func:`serve_graph`.

What it serves (shapes and messages from Microsoft's documented examples):

- ``GET /{tenant}/v2.0/.well-known/openid-configuration``; ``POST /{tenant}/oauth2/v2.0/token``
  (client credentials only; a wrong secret answers 401 ``invalid_client`` / AADSTS7000215);
- ``/v1.0/users`` (list with ``$top``/``$select``/``@odata.nextLink``, create), ``/v1.0/users/{id |
  userPrincipalName}`` (get, PATCH 204, DELETE 204), ``signInActivity`` only when selected and
  only with AuditLog.Read.All;
- ``/v1.0/groups`` (list, paged), ``/v1.0/groups/{id}``, ``/members`` (paged),
  ``POST /members/$ref`` and ``DELETE /members/{id}/$ref``;
- ``/v1.0/users/{id}/appRoleAssignments`` (POST 201, GET, DELETE 204),
  ``/v1.0/servicePrincipals/{id}`` and ``/appRoleAssignedTo``;
- ``/v1.0/users/{id}/authentication/temporaryAccessPassMethods`` (list, create 201, delete
  204; see :mod:`tests.emulators.graph_auth_methods`);
- ``POST /v1.0/$batch`` with at most 20 sub-requests, each answered on its own (and answered in
  reverse order: Graph does not promise any order, so clients must match by ``id``).

It refuses what Graph refuses: no or a stale bearer token (401), a missing permission (403),
unknown properties in a body or ``$select`` (400), a missing required property on create, a
duplicate userPrincipalName, a UPN outside the tenant's verified domains, a weak password,
an existing member (400), a missing member on removal (404), query options it does not know.
Errors have Graph's body ``{"error": {"code", "message", "innerError"}}``.

Faults for tests: :meth:`GraphEmulator.throttle` / :meth:`GraphEmulator.unavailable` (the next
N requests answer 429 / 503 with ``Retry-After``), :meth:`GraphEmulator.throttle_subrequests`
(sub-requests of a batch answer 429 on their own) and :meth:`GraphEmulator.drop_next_batch`
(the connection closes after part of a batch was applied).

The constants, errors and replies live in :mod:`tests.emulators.graph_model`, the ``/v1.0``
resource handlers in :mod:`tests.emulators.graph_resources`; this module holds the state,
seeding, faults, the identity platform, ``$batch``, the ASGI entry and :func:`serve_graph`.
"""

from __future__ import annotations

import contextlib
import json
import re
import secrets
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, Mapping
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, unquote

from tests.emulators.graph_model import (
    ALL_PERMISSIONS,
    DEFAULT_PAGE,
    GRAPH_SCOPE,
    GROUP_DEFAULT,
    JSON_TYPE,
    MAX_BATCH,
    MAX_TOP,
    USER_DEFAULT,
    USER_READABLE,
    USER_REQUIRED,
    USER_WRITABLE,
    GraphError,
    Reply,
    _bad,
    _Fault,
    _iso,
)
from tests.emulators.graph_resources import GraphResources
from tests.emulators.serve import ServedApp, serve
from tests.emulators.tls import TestPki

__all__ = [
    "ALL_PERMISSIONS",
    "DEFAULT_PAGE",
    "GRAPH_SCOPE",
    "GROUP_DEFAULT",
    "JSON_TYPE",
    "MAX_BATCH",
    "MAX_TOP",
    "USER_DEFAULT",
    "USER_READABLE",
    "USER_REQUIRED",
    "USER_WRITABLE",
    "GraphEmulator",
    "GraphError",
    "Reply",
    "serve_graph",
]


class GraphEmulator(GraphResources):
    """The state of one tenant and the request handler over it."""

    def __init__(self, *, tenant_id: str | None = None, client_id: str | None = None,
                 client_secret: str | None = None,
                 domains: tuple[str, ...] = ("contoso.example",)) -> None:
        self.tenant_id = tenant_id or str(uuid.uuid4())
        self.client_id = client_id or str(uuid.uuid4())
        self.client_secret = client_secret or secrets.token_urlsafe(24)
        self.domains = tuple(d.casefold() for d in domains)
        self.permissions: set[str] = set(ALL_PERMISSIONS)
        self.users: dict[str, dict[str, Any]] = {}
        # Kept only so that tests can check what clients send (and that it leaks nowhere).
        self.password_profiles: dict[str, dict[str, Any]] = {}
        self.received_passwords: list[str] = []
        self.groups: dict[str, dict[str, Any]] = {}
        self.members: dict[str, list[str]] = {}
        self.service_principals: dict[str, dict[str, Any]] = {}
        self.assignments: dict[str, dict[str, Any]] = {}
        self.access_passes: dict[str, dict[str, Any]] = {}  # user id -> its TAP method
        # The tenant's Temporary Access Pass policy (Graph's full range allowed by default).
        self.tap_policy: dict[str, Any] = {
            "enabled": True, "minimumLifetimeInMinutes": 10, "maximumLifetimeInMinutes": 43200,
            "defaultLifetimeInMinutes": 60, "isUsableOnce": False, "defaultLength": 8}
        self.tokens: dict[str, float] = {}  # token -> monotonic expiry
        self.requests: list[tuple[str, str]] = []  # (method, path) of every request, in order
        self.batch_sizes: list[int] = []
        self._faults: list[_Fault] = []
        self._sub_faults: list[_Fault] = []
        self._drop_after: int | None = None
        self._lock = threading.RLock()
        self._skip: dict[str, list[str]] = {}  # skiptoken -> remaining ids

    # ---- seeding and inspection (test side) ---------------------------------------------------

    def add_user(self, upn: str, *, display_name: str | None = None, enabled: bool = True,
                 **properties: Any) -> str:
        user_id = str(uuid.uuid4())
        self.users[user_id] = {"id": user_id, "userPrincipalName": upn,
                               "displayName": display_name or upn.split("@")[0],
                               "mailNickname": upn.split("@")[0], "accountEnabled": enabled,
                               "createdDateTime": "2026-01-01T00:00:00Z",
                               "signInActivity": None, **properties}
        return user_id

    def add_group(self, display_name: str) -> str:
        group_id = str(uuid.uuid4())
        self.groups[group_id] = {"id": group_id, "displayName": display_name,
                                 "description": None, "mail": None, "mailEnabled": False,
                                 "mailNickname": re.sub(r"\W", "", display_name) or "group",
                                 "securityEnabled": True, "groupTypes": [],
                                 "createdDateTime": "2026-01-01T00:00:00Z"}
        self.members[group_id] = []
        return group_id

    def add_service_principal(self, display_name: str, roles: Mapping[str, str]) -> str:
        """A resource application with app roles ``{value: display name}``; answer its id."""
        sp_id = str(uuid.uuid4())
        self.service_principals[sp_id] = {
            "id": sp_id, "appId": str(uuid.uuid4()), "displayName": display_name,
            "appRoles": [{"id": str(uuid.uuid4()), "value": value, "displayName": name,
                          "allowedMemberTypes": ["User"], "isEnabled": True,
                          "description": name, "origin": "Application"}
                         for value, name in roles.items()]}
        return sp_id

    def app_role_id(self, sp_id: str, value: str) -> str:
        return str(next(r["id"] for r in self.service_principals[sp_id]["appRoles"]
                        if r["value"] == value))

    def record_sign_in(self, user_id: str, moment: datetime) -> None:
        stamp = _iso(moment)
        self.users[user_id]["signInActivity"] = {
            "lastSignInDateTime": stamp, "lastSignInRequestId": str(uuid.uuid4()),
            "lastNonInteractiveSignInDateTime": None, "lastNonInteractiveSignInRequestId": None,
            "lastSuccessfulSignInDateTime": stamp,
            "lastSuccessfulSignInRequestId": str(uuid.uuid4())}

    def user_by_upn(self, upn: str) -> dict[str, Any] | None:
        return next((u for u in self.users.values()
                     if u["userPrincipalName"].casefold() == upn.casefold()), None)

    def expire_tokens(self) -> None:
        self.tokens = dict.fromkeys(self.tokens, 0.0)

    # ---- faults ------------------------------------------------------------------------------

    def throttle(self, count: int = 1, *, retry_after: int = 7) -> None:
        """The next ``count`` Graph requests answer 429 with ``Retry-After``."""
        self._faults.append(_Fault(429, retry_after, count))

    def unavailable(self, count: int = 1, *, retry_after: int | None = None) -> None:
        """The next ``count`` Graph requests answer 503 (``Retry-After`` when given)."""
        self._faults.append(_Fault(503, retry_after, count))

    def throttle_subrequests(self, count: int = 1, *, retry_after: int = 5,
                             match: str | None = None) -> None:
        """The next ``count`` batch sub-requests (whose url contains ``match``) answer 429."""
        self._sub_faults.append(_Fault(429, retry_after, count, match))

    def drop_next_batch(self, *, after: int) -> None:
        """The next ``$batch`` applies its first ``after`` sub-requests, then the connection
        closes before the answer is complete."""
        self._drop_after = after

    # ---- the handler -------------------------------------------------------------------------

    def handle(self, method: str, path: str, query: dict[str, str], headers: Mapping[str, str],
               body: bytes, base: str) -> tuple[Reply, bool]:
        """Answer one HTTP request; the flag says to drop the connection mid-answer."""
        with self._lock:
            self.requests.append((method, path))
            try:
                if not path.startswith("/v1.0/"):
                    return self._identity(method, path, headers, body, base), False
                self._authorise(headers)
                fault = self._take(self._faults, path)
                if fault is not None:
                    raise self._fault_error(fault)
                if path == "/v1.0/$batch" and method == "POST":
                    return self._batch(headers, body, base)
                data = self._json_body(method, headers, body)
                return self._graph(method, path[len("/v1.0"):], query, data, base), False
            except GraphError as error:
                return self._error_reply(error), False

    @staticmethod
    def _error_reply(error: GraphError) -> Reply:
        payload: dict[str, Any] = {"code": error.code, "message": error.message,
                                   "innerError": {"date": "2026-01-15T09:00:00",
                                                  "request-id": str(uuid.uuid4()),
                                                  "client-request-id": str(uuid.uuid4())}}
        if error.details:
            payload["details"] = error.details
        return Reply(error.status, {"error": payload}, dict(error.headers))

    @staticmethod
    def _take(faults: list[_Fault], url: str) -> _Fault | None:
        for fault in faults:
            if fault.remaining > 0 and (fault.match is None or fault.match in url):
                fault.remaining -= 1
                return fault
        return None

    @staticmethod
    def _fault_error(fault: _Fault) -> GraphError:
        headers = {} if fault.retry_after is None else {"Retry-After": str(fault.retry_after)}
        if fault.status == 429:
            return GraphError(429, "TooManyRequests",
                              "Too many requests. Please retry after the indicated time.",
                              headers=headers)
        return GraphError(503, "ServiceUnavailable",
                          "The service is temporarily unavailable.", headers=headers)

    # ---- identity platform -------------------------------------------------------------------

    def _identity(self, method: str, path: str, headers: Mapping[str, str], body: bytes,
                  base: str) -> Reply:
        parts = path.strip("/").split("/")
        tenant = parts[0] if parts else ""
        rest = "/".join(parts[1:])
        if rest == "v2.0/.well-known/openid-configuration" and method == "GET":
            if tenant != self.tenant_id:
                return Reply(400, {"error": "invalid_tenant",
                                   "error_description": f"AADSTS90002: Tenant '{tenant}' not "
                                   "found. Check to make sure you have the correct tenant ID."})
            root = f"{base}/{tenant}"
            return Reply(200, {
                "issuer": f"{base}/{tenant}/v2.0",
                "authorization_endpoint": f"{root}/oauth2/v2.0/authorize",
                "token_endpoint": f"{root}/oauth2/v2.0/token",
                "device_authorization_endpoint": f"{root}/oauth2/v2.0/devicecode",
                "jwks_uri": f"{root}/discovery/v2.0/keys",
                "response_types_supported": ["code", "id_token", "code id_token",
                                             "id_token token"],
                "subject_types_supported": ["pairwise"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "token_endpoint_auth_methods_supported": ["client_secret_post",
                                                          "private_key_jwt",
                                                          "client_secret_basic"],
                "scopes_supported": ["openid", "profile", "email", "offline_access"],
                "tenant_region_scope": "EU"})
        if rest == "oauth2/v2.0/token" and method == "POST":
            return self._token(tenant, headers, body)
        return Reply(404, {"error": "not_found", "error_description": "No such endpoint."})

    def _token(self, tenant: str, headers: Mapping[str, str], body: bytes) -> Reply:
        def refuse(status: int, error: str, description: str) -> Reply:
            return Reply(status, {"error": error, "error_description": description,
                                  "error_codes": [int(description[6:description.index(":")])],
                                  "trace_id": str(uuid.uuid4()),
                                  "correlation_id": str(uuid.uuid4())})

        if not headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            return refuse(400, "invalid_request", "AADSTS900144: The request body must "
                          "contain the following parameter: 'grant_type'.")
        form = dict(parse_qsl(body.decode(), keep_blank_values=True))
        if tenant != self.tenant_id:
            return refuse(400, "invalid_request", f"AADSTS90002: Tenant '{tenant}' not found.")
        if form.get("grant_type") != "client_credentials":
            return refuse(400, "unsupported_grant_type", "AADSTS70003: The app requested an "
                          "unsupported grant type.")
        if form.get("client_id") != self.client_id:
            return refuse(400, "unauthorized_client", "AADSTS700016: Application with "
                          f"identifier '{form.get('client_id')}' was not found in the "
                          "directory.")
        if not secrets.compare_digest(form.get("client_secret", ""), self.client_secret):
            return refuse(401, "invalid_client", "AADSTS7000215: Invalid client secret "
                          "provided. Ensure the secret being sent in the request is the client "
                          "secret value, not the client secret ID.")
        if form.get("scope") != GRAPH_SCOPE:
            return refuse(400, "invalid_scope", "AADSTS1002012: The provided value for scope "
                          f"{form.get('scope')} is not valid. Client credential flows must have "
                          "a scope value with /.default suffixed to the resource identifier.")
        token = secrets.token_urlsafe(32)
        self.tokens[token] = time.monotonic() + 3600
        return Reply(200, {"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599,
                           "access_token": token})

    def _authorise(self, headers: Mapping[str, str]) -> None:
        value = headers.get("authorization", "")
        if not value:
            raise GraphError(401, "InvalidAuthenticationToken", "Access token is empty.")
        scheme, _, token = value.partition(" ")
        expiry = self.tokens.get(token)
        if scheme.casefold() != "bearer" or expiry is None:
            raise GraphError(401, "InvalidAuthenticationToken",
                             "Access token validation failure. Invalid audience.")
        if expiry <= time.monotonic():
            raise GraphError(401, "InvalidAuthenticationToken",
                             "Lifetime validation failed, the token is expired.")

    def _need(self, *any_of: str) -> None:
        if not self.permissions.intersection(any_of):
            raise GraphError(403, "Authorization_RequestDenied",
                             "Insufficient privileges to complete the operation.")

    @staticmethod
    def _json_body(method: str, headers: Mapping[str, str], body: bytes) -> Any:
        if method not in ("POST", "PATCH", "PUT"):
            return None
        if not headers.get("content-type", "").startswith("application/json"):
            raise GraphError(415, "UnsupportedMediaType",
                             "Content-Type must be application/json.")
        try:
            return json.loads(body or b"null")
        except ValueError:
            raise _bad("Unable to read JSON request payload. Please ensure Content-Type "
                       "header is set and payload is of valid JSON format.",
                       "BadRequest") from None

    # ---- batch -------------------------------------------------------------------------------

    def _batch(self, headers: Mapping[str, str], body: bytes, base: str) -> tuple[Reply, bool]:
        payload = self._json_body("POST", headers, body)
        requests = payload.get("requests") if isinstance(payload, dict) else None
        if not isinstance(requests, list) or set(payload) != {"requests"}:
            raise _bad("Invalid batch payload format.", "BadRequest")
        if len(requests) > MAX_BATCH:
            raise _bad(f"Invalid batch payload format. The number of requests in the batch "
                       f"exceeds the limit of {MAX_BATCH}.", "BadRequest")
        ids = [r.get("id") if isinstance(r, dict) else None for r in requests]
        if any(not isinstance(i, str) or not i for i in ids) or len(set(ids)) != len(ids):
            raise _bad("Invalid batch payload format. Each request needs a unique id.",
                       "BadRequest")
        self.batch_sizes.append(len(requests))
        drop_after, self._drop_after = self._drop_after, None
        responses: list[dict[str, Any]] = []
        for index, sub in enumerate(requests):
            if drop_after is not None and index >= drop_after:
                return Reply(200, {"responses": responses}), True
            responses.append(self._sub_request(sub, base))
        responses.reverse()  # Graph promises no order: clients match answers by id
        return Reply(200, {"responses": responses}), drop_after is not None

    def _sub_request(self, sub: dict[str, Any], base: str) -> dict[str, Any]:
        unknown = set(sub) - {"id", "method", "url", "headers", "body"}
        try:
            if unknown:
                raise _bad(f"Unsupported batch request property: {sorted(unknown)[0]}.",
                           "BadRequest")
            method, url = sub.get("method"), sub.get("url")
            if method not in ("GET", "POST", "PATCH", "PUT", "DELETE") or \
                    not isinstance(url, str) or url.startswith(("http:", "https:")):
                raise _bad("Invalid method or url in batch request.", "BadRequest")
            sub_headers = {k.casefold(): v for k, v in (sub.get("headers") or {}).items()}
            if "body" in sub and "content-type" not in sub_headers:
                raise _bad("Write request id : " + sub["id"] + " does not contain "
                           "Content-Type header or body.", "BadRequest")
            fault = self._take(self._sub_faults, url)
            if fault is not None:
                raise self._fault_error(fault)
            path, _, raw_query = ("/" + url.lstrip("/")).partition("?")
            if path.startswith("/$batch"):
                raise _bad("Nested batch requests are not supported.", "BadRequest")
            body = sub.get("body") if method in ("POST", "PATCH", "PUT") else None
            reply = self._graph(str(method), unquote(path), dict(parse_qsl(raw_query)), body,
                                base)
        except GraphError as error:
            reply = self._error_reply(error)
        answer: dict[str, Any] = {"id": sub.get("id"), "status": reply.status,
                                  "headers": {**reply.headers}}
        if reply.body is not None:
            answer["headers"]["Content-Type"] = JSON_TYPE
            answer["body"] = reply.body
        return answer

    # ---- ASGI --------------------------------------------------------------------------------

    async def __call__(self, scope: dict[str, Any],
                       receive: Callable[[], Awaitable[dict[str, Any]]],
                       send: Callable[[dict[str, Any]], Awaitable[None]]) -> None:
        if scope["type"] != "http":
            return
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        headers = {k.decode("latin-1").casefold(): v.decode("latin-1")
                   for k, v in scope["headers"]}
        host = headers.get("host", "127.0.0.1")
        base = f"{scope['scheme']}://{host}"
        query = dict(parse_qsl(scope.get("query_string", b"").decode(),
                               keep_blank_values=True))
        reply, drop = self.handle(scope["method"], scope["path"], query, headers,
                                  b"".join(chunks), base)
        payload = b"" if reply.body is None else json.dumps(reply.body).encode()
        out = [(b"content-length", str(len(payload)).encode()),
               (b"request-id", str(uuid.uuid4()).encode())]
        if reply.body is not None:
            content_type = JSON_TYPE if scope["path"].startswith("/v1.0/") else \
                "application/json; charset=utf-8"
            out.append((b"content-type", content_type.encode()))
        out.extend((k.casefold().encode(), v.encode()) for k, v in reply.headers.items())
        await send({"type": "http.response.start", "status": reply.status, "headers": out})
        if drop:
            # Half an answer, then the connection goes: the client cannot know what happened.
            await send({"type": "http.response.body", "body": payload[:len(payload) // 2],
                        "more_body": True})
            return
        await send({"type": "http.response.body", "body": payload})


# ---- serving over HTTPS ---------------------------------------------------------------------

@contextlib.contextmanager
def serve_graph(emulator: GraphEmulator, pki: TestPki) -> Iterator[ServedApp]:
    """Serve ``emulator`` over HTTPS on a free port of 127.0.0.1 while the block runs
    (``served.url`` is ``https://127.0.0.1:PORT``; ``stop()``/``start()`` take it down and
    bring it back on the same port)."""
    with serve(emulator, ssl_keyfile=str(pki.key_file),
               ssl_certfile=str(pki.cert_file)) as served:
        yield served
