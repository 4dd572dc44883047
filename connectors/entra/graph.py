"""A thin Microsoft Graph client: an msal token, JSON over httpx, ``$batch``, and the
translation of every failure into :mod:`connectors.errors`.

No retry loop lives here: a 429 or 503 becomes ``Throttled`` / ``TargetUnavailable`` carrying
the ``Retry-After`` seconds, and the provisioning engine schedules the next attempt. The one
exception is an expired access token (Graph answers 401): the token is dropped and the request
sent once more with a fresh one, without waiting.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import msal
import requests
from msal.exceptions import MsalServiceError

from connectors.entra.config import EntraSettings
from connectors.errors import (
    AuthenticationFailed,
    ConnectorError,
    DataError,
    PolicyViolation,
    TargetTimeout,
    TargetUnavailable,
    Throttled,
)

MAX_BATCH = 20

# Token endpoint errors that no retry will cure.
_TOKEN_REFUSALS = frozenset({"invalid_client", "unauthorized_client", "invalid_request",
                             "invalid_scope", "invalid_grant", "unsupported_grant_type",
                             "invalid_tenant", "access_denied"})


@dataclass(frozen=True)
class Answer:
    """A Graph answer, top-level or one sub-response of a batch."""

    status: int
    body: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)

    @property
    def error_code(self) -> str:
        error = self.body.get("error") if isinstance(self.body, dict) else None
        return str(error.get("code", "")) if isinstance(error, dict) else ""

    @property
    def error_message(self) -> str:
        error = self.body.get("error") if isinstance(self.body, dict) else None
        return str(error.get("message", "")) if isinstance(error, dict) else ""

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers.items() if k.casefold() == name.casefold()),
                    None)


def retry_after(answer: Answer) -> float | None:
    """Seconds from a ``Retry-After`` header (Graph sends seconds; a date counts as absent)."""
    value = answer.header("Retry-After")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


class GraphClient:
    """Calls Graph for one application; built without I/O, connects on first use."""

    def __init__(self, settings: EntraSettings, client_secret: str) -> None:
        self._settings = settings
        self._secret = client_secret
        self._redacted: list[str] = [client_secret] if client_secret else []
        self._app: msal.ConfidentialClientApplication | None = None
        self._session: requests.Session | None = None
        self._http: httpx.Client | None = None

    # ---- secrets never leave in a message --------------------------------------------------

    @contextmanager
    def redacting(self, value: str) -> Iterator[None]:
        """While the block runs, ``value`` is blanked out of every error message."""
        self._redacted.append(value)
        try:
            yield
        finally:
            self._redacted.remove(value)

    def redact(self, text: str) -> str:
        for value in self._redacted:
            text = text.replace(value, "***")
        return text

    # ---- the token ---------------------------------------------------------------------------

    def _msal(self) -> msal.ConfidentialClientApplication:
        if self._app is None:
            session = requests.Session()
            # Environment variables (REQUESTS_CA_BUNDLE...) would override ``verify``.
            session.trust_env = False
            session.verify = self._settings.ca_file or True
            self._session = session
            try:
                self._app = msal.ConfidentialClientApplication(
                    self._settings.client_id, client_credential=self._secret,
                    authority=self._settings.authority, instance_discovery=False,
                    http_client=session, timeout=self._settings.timeout)
            except ValueError as exc:  # msal: the tenant's discovery answered 4xx
                raise AuthenticationFailed(
                    "Entra refused the tenant discovery of "
                    f"{self._settings.authority}: {self.redact(str(exc))[:300]}") from None
        return self._app

    def token(self) -> str:
        """An access token for Graph (msal serves it from its cache while it is valid)."""
        try:
            result = self._msal().acquire_token_for_client(scopes=[self._settings.scope])
        except requests.Timeout:
            raise TargetTimeout("the Entra token endpoint did not answer in time") from None
        except (requests.ConnectionError, requests.HTTPError) as exc:
            raise TargetUnavailable("the Entra token endpoint is unreachable: "
                                    f"{type(exc).__name__}") from None
        except MsalServiceError as exc:  # msal: the token endpoint answered 5xx
            raise TargetUnavailable("the Entra token endpoint failed: "
                                    f"{self.redact(str(exc))[:200]}") from None
        except ValueError:  # an answer that is not JSON: a proxy or an outage page
            raise TargetUnavailable("the Entra token endpoint gave an unreadable answer") \
                from None
        if not isinstance(result, dict):
            raise TargetUnavailable("the Entra token endpoint gave no answer")
        if "access_token" in result:
            return str(result["access_token"])
        error = str(result.get("error", "unknown_error"))
        description = self.redact(str(result.get("error_description", "")).split("\r\n")[0])
        message = f"Entra refused the client credentials ({error}): {description}"[:400]
        if error in _TOKEN_REFUSALS:
            raise AuthenticationFailed(message)
        raise TargetUnavailable(message)

    def _forget_token(self) -> None:
        if self._app is not None:
            self._app.remove_tokens_for_client()

    # ---- requests ----------------------------------------------------------------------------

    def _client(self) -> httpx.Client:
        if self._http is None:
            verify = ssl.create_default_context(cafile=self._settings.ca_file) \
                if self._settings.ca_file else ssl.create_default_context()
            self._http = httpx.Client(verify=verify, timeout=self._settings.timeout,
                                      trust_env=False,
                                      headers={"Accept": "application/json"})
        return self._http

    def url(self, path: str) -> str:
        """An absolute URL under the Graph base (``path`` starts with ``/``)."""
        return self._settings.graph_url + path

    def send(self, method: str, url: str, *, json: Any = None,
             params: Mapping[str, str] | None = None) -> Answer:
        """One request; transport failures raised, HTTP statuses answered as they are."""
        for attempt in (1, 2):
            headers = {"Authorization": f"Bearer {self.token()}"}
            try:
                response = self._client().request(method, url, json=json, params=params,
                                                  headers=headers)
            except httpx.TimeoutException:
                raise TargetTimeout(f"Graph did not answer {method} in time") from None
            except httpx.TransportError as exc:
                raise TargetUnavailable("Graph is unreachable or dropped the connection: "
                                        f"{type(exc).__name__}") from None
            try:
                body = response.json() if response.content else None
            except ValueError:
                body = None
            answer = Answer(response.status_code, body, dict(response.headers))
            if answer.status == 401 and attempt == 1:
                self._forget_token()  # expired or revoked: one more try with a fresh token
                continue
            return answer
        raise AssertionError("unreachable")  # pragma: no cover

    def call(self, method: str, path: str, *, json: Any = None,
             params: Mapping[str, str] | None = None, url: str | None = None) -> Answer:
        """``send`` under the Graph base; any status >= 400 raised as a ConnectorError."""
        answer = self.send(method, url or self.url(path), json=json, params=params)
        if answer.status >= 400:
            raise self.error(answer, f"{method} {path}")
        return answer

    def batch(self, requests_: Sequence[Mapping[str, Any]]) -> list[Answer | ConnectorError]:
        """Send sub-requests (``method``, ``url`` relative to the base, optional ``body``) in
        ``$batch`` calls of at most 20; one answer or error per sub-request, in order.

        When a whole batch call fails (refused, throttled, dropped mid-answer) every
        sub-request of that call carries the error: none of them is known to have landed,
        and each is idempotent, so running it again is safe.
        """
        results: list[Answer | ConnectorError] = []
        for start in range(0, len(requests_), MAX_BATCH):
            chunk = requests_[start:start + MAX_BATCH]
            payload = {"requests": [
                {"id": str(n), "method": r["method"], "url": r["url"],
                 **({"body": r["body"], "headers": {"Content-Type": "application/json"}}
                    if r.get("body") is not None else {})}
                for n, r in enumerate(chunk)]}
            try:
                answer = self.call("POST", "/$batch", json=payload)
                by_id = {str(s.get("id")): s for s in answer.body.get("responses", [])} \
                    if isinstance(answer.body, dict) else {}
            except ConnectorError as error:
                results.extend(error for _ in chunk)
                continue
            for n in range(len(chunk)):
                sub = by_id.get(str(n))
                if sub is None:
                    results.append(TargetUnavailable("Graph left a batch request unanswered"))
                else:
                    results.append(Answer(int(sub.get("status", 500)), sub.get("body"),
                                          dict(sub.get("headers") or {})))
        return results

    # ---- errors ------------------------------------------------------------------------------

    def error(self, answer: Answer, what: str) -> ConnectorError:
        """The ConnectorError for a failed Graph answer."""
        detail = " ".join(p for p in (answer.error_code, answer.error_message) if p)
        message = self.redact(f"Graph {what}: {answer.status} {detail}".strip())[:500]
        status = answer.status
        if status == 429:
            return Throttled(message, retry_after=retry_after(answer))
        if status in (408, 504):
            return TargetTimeout(message, retry_after=retry_after(answer))
        if status >= 500:
            return TargetUnavailable(message, retry_after=retry_after(answer))
        if status == 401:
            return AuthenticationFailed(message)
        if status == 403:
            return PolicyViolation(message)
        return DataError(message)

    def close(self) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None
        if self._session is not None:
            self._session.close()
            self._session = None
        self._app = None
