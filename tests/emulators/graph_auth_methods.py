"""The Graph emulator's temporary access pass methods (``/users/{id}/authentication/
temporaryAccessPassMethods``): list, create, delete, checked as Microsoft documents them.

- Create (``POST``, permission UserAuthenticationMethod.ReadWrite.All) takes only
  ``startDateTime`` (DateTimeOffset), ``lifetimeInMinutes`` (10 to 43200, and within the
  tenant's policy, :attr:`GraphAuthMethods.tap_policy`) and ``isUsableOnce`` (Boolean);
  anything else is 400. A user holds one pass: creating a second is refused (400). The answer
  is 201 with the temporaryAccessPassAuthenticationMethod, ``temporaryAccessPass`` included
  (the only time it is shown); listing answers it as null.
- Delete answers 204, 404 for an unknown method.

Issued passes stay in :attr:`GraphAuthMethods.access_passes` (user id -> method, value
included) for tests to read.
"""

from __future__ import annotations

import secrets
import string
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.emulators.graph_model import GraphError, Reply, _bad, _not_found

TAP_FIELDS = frozenset({"startDateTime", "lifetimeInMinutes", "isUsableOnce"})
TAP_PERMISSION = "UserAuthenticationMethod.ReadWrite.All"
_ALPHABET = string.ascii_letters + string.digits + "!#$%&*+-=?@"


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class GraphAuthMethods:
    """Temporary access pass handlers over the emulator's state (a mixin)."""

    access_passes: dict[str, dict[str, Any]]
    tap_policy: dict[str, Any]

    # Provided by the emulator.
    def _need(self, *any_of: str) -> None:
        raise NotImplementedError

    def _user(self, key: str) -> dict[str, Any]:
        raise NotImplementedError

    def _tap_view(self, user_id: str, method: Mapping[str, Any], *,
                  with_value: bool) -> dict[str, Any]:
        start = datetime.fromisoformat(str(method["startDateTime"]))
        now = datetime.now(UTC)
        end = start + timedelta(minutes=int(method["lifetimeInMinutes"]))
        usable = start <= now < end and not method.get("used")
        reason = ("EnabledByPolicy" if usable else "NotYetValid" if now < start
                  else "OneTimeUsed" if method.get("used") else "Expired")
        return {"id": method["id"],
                "temporaryAccessPass": method["temporaryAccessPass"] if with_value else None,
                "createdDateTime": method["createdDateTime"],
                "startDateTime": method["startDateTime"],
                "lifetimeInMinutes": method["lifetimeInMinutes"],
                "isUsableOnce": method["isUsableOnce"], "isUsable": usable,
                "methodUsabilityReason": reason}

    def _list_taps(self, key: str, *, query: Mapping[str, str], data: Any,
                   base: str) -> Reply:
        self._need(TAP_PERMISSION, "UserAuthenticationMethod.Read.All")
        user = self._user(key)
        method = self.access_passes.get(user["id"])
        values = [] if method is None else [self._tap_view(user["id"], method,
                                                           with_value=False)]
        return Reply(200, {"@odata.context": f"{base}/v1.0/$metadata#users('{user['id']}')/"
                           "authentication/temporaryAccessPassMethods", "value": values})

    def _create_tap(self, key: str, *, query: Mapping[str, str], data: Any,
                    base: str) -> Reply:
        self._need(TAP_PERMISSION)
        user = self._user(key)
        if not isinstance(data, dict):
            raise _bad("Invalid request body.", "BadRequest")
        unknown = sorted(set(data) - TAP_FIELDS)
        if unknown:
            raise _bad(f"The property '{unknown[0]}' does not exist on type "
                       "'microsoft.graph.temporaryAccessPassAuthenticationMethod'.",
                       "BadRequest")
        policy = self.tap_policy
        if not policy.get("enabled", True):
            raise GraphError(403, "accessDenied", "The Temporary Access Pass authentication "
                             "method is not enabled by the tenant's policy.")
        lifetime = data.get("lifetimeInMinutes", policy["defaultLifetimeInMinutes"])
        if isinstance(lifetime, bool) or not isinstance(lifetime, int) \
                or not 10 <= lifetime <= 43200:
            raise _bad("lifetimeInMinutes must be an integer between 10 and 43200.",
                       "badRequest")
        if not policy["minimumLifetimeInMinutes"] <= lifetime \
                <= policy["maximumLifetimeInMinutes"]:
            raise _bad("The lifetime is outside the range the Temporary Access Pass policy "
                       f"allows ({policy['minimumLifetimeInMinutes']} to "
                       f"{policy['maximumLifetimeInMinutes']} minutes).", "badRequest")
        once = data.get("isUsableOnce", policy["isUsableOnce"])
        if not isinstance(once, bool):
            raise _bad("isUsableOnce must be a Boolean.", "badRequest")
        if policy["isUsableOnce"] and not once:
            raise _bad("The Temporary Access Pass policy requires one-time use.", "badRequest")
        now = datetime.now(UTC)
        start = now
        if "startDateTime" in data:
            try:
                start = datetime.fromisoformat(str(data["startDateTime"]))
            except ValueError:
                raise _bad("Cannot convert the literal to Edm.DateTimeOffset.",
                           "BadRequest") from None
            if start.tzinfo is None:
                raise _bad("startDateTime needs an offset.", "BadRequest")
        if user["id"] in self.access_passes:
            raise _bad("The user already has a Temporary Access Pass; delete it first.",
                       "badRequest")
        value = "".join(secrets.choice(_ALPHABET) for _ in range(policy["defaultLength"]))
        method = {"id": str(uuid.uuid4()), "temporaryAccessPass": value,
                  "createdDateTime": _stamp(now), "startDateTime": _stamp(start),
                  "lifetimeInMinutes": lifetime, "isUsableOnce": once}
        self.access_passes[user["id"]] = method
        return Reply(201, {"@odata.context": f"{base}/v1.0/$metadata#users('{user['id']}')/"
                           "authentication/temporaryAccessPassMethods/$entity",
                           **self._tap_view(user["id"], method, with_value=True)})

    def _delete_tap(self, key: str, method_id: str, *, query: Mapping[str, str], data: Any,
                    base: str) -> Reply:
        self._need(TAP_PERMISSION)
        user = self._user(key)
        method = self.access_passes.get(user["id"])
        if method is None or method["id"] != method_id.casefold():
            raise _not_found(method_id)
        del self.access_passes[user["id"]]
        return Reply(204)
