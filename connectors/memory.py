"""An in-process fake target, strict like a real one, for trials and tests of the engine.

Targets live in a module-level registry keyed by ``settings["target"]`` (a name), so every
connector built for the same application sees the same accounts and memberships, whether
the engine builds a fresh connector per operation or caches one. Tests seed a target and
inject faults through :class:`MemoryTarget`::

    target = MemoryTarget.get("hr-app")
    target.add_entitlement("g-finance", "Finance", "group")
    target.down = True                      # every call: TargetUnavailable
    target.throttle(retry_after=30, times=2)
    target.timeout_next(after_effect=True)  # the change lands, the answer is lost
    target.fail_next(DataError("bad"))

Every call is logged in ``target.calls`` with its outcome, so a test can assert that
nothing was done twice.

First access: the connector sets passwords (``set_password``, declared by default) and, when
``settings["capabilities"]`` names them, sends activation emails (``activation_email``) and
issues temporary access passes (``temporary_access_pass``). The target keeps what it was given
for tests to read (``check_password``, ``activation_emails``, ``access_passes``): it is a fake.
"""

from __future__ import annotations

import base64
import binascii
import secrets
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar, TypeVar

from connectors.base import (
    ALL_CAPABILITIES,
    CAN_ACTIVATION_EMAIL,
    CAN_CREATE,
    CAN_DELETE,
    CAN_ENABLE_DISABLE,
    CAN_GRANT,
    CAN_LAST_SIGN_IN,
    CAN_LIST_ACCOUNTS,
    CAN_LIST_ENTITLEMENTS,
    CAN_SET_PASSWORD,
    CAN_TEMPORARY_ACCESS,
    CAN_UPDATE,
    FIRST_ACCESS_CAPABILITIES,
    AccountInfo,
    AccountRef,
    AccountSpec,
    EntitlementInfo,
    Page,
    TemporaryAccessPass,
)
from connectors.errors import (
    AuthenticationFailed,
    ConnectorError,
    DataError,
    NotSupported,
    TargetTimeout,
    TargetUnavailable,
    Throttled,
)

T = TypeVar("T")

# Attributes that tell two people apart: an account with the same username but another
# value of one of these belongs to someone else.
IDENTIFYING_ATTRIBUTES = ("employeeNumber", "mail")

OK = "ok"


@dataclass(frozen=True)
class Call:
    """One call a connector made on the target, and how it ended (``"ok"`` or the error's
    category)."""

    method: str
    args: tuple[str, ...]
    outcome: str


@dataclass
class _Account:
    native_id: str
    username: str
    attributes: dict[str, Any]
    enabled: bool = True
    last_sign_in: datetime | None = None

    def info(self) -> AccountInfo:
        return AccountInfo(native_id=self.native_id, username=self.username,
                           attributes=dict(self.attributes), enabled=self.enabled,
                           last_sign_in=self.last_sign_in)


@dataclass
class _Entitlement:
    native_id: str
    name: str
    kind: str
    members: set[str] = field(default_factory=set)

    def info(self) -> EntitlementInfo:
        return EntitlementInfo(native_id=self.native_id, name=self.name, kind=self.kind,
                               members=tuple(sorted(self.members)))


@dataclass
class _Fault:
    error: ConnectorError
    after_effect: bool

    def fresh(self) -> ConnectorError:
        """A new instance to raise (one exception object is not raised twice)."""
        return type(self.error)(self.error.message, retry_after=self.error.retry_after)


class MemoryTarget:
    """The state of one fake target, shared by every connector that names it."""

    _targets: ClassVar[dict[str, MemoryTarget]] = {}
    _registry_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, name: str) -> None:
        self.name = name
        self.lock = threading.RLock()
        self.reset()

    # ---- registry ---------------------------------------------------------------------------

    @classmethod
    def get(cls, name: str) -> MemoryTarget:
        """The target called ``name``, created empty on first use."""
        with cls._registry_lock:
            target = cls._targets.get(name)
            if target is None:
                target = cls._targets[name] = cls(name)
            return target

    @classmethod
    def forget_all(cls) -> None:
        """Drop every target (a test's teardown)."""
        with cls._registry_lock:
            cls._targets.clear()

    def reset(self) -> None:
        """Empty the target: no accounts, entitlements, faults, calls or password."""
        with self.lock:
            self.accounts: dict[str, _Account] = {}
            self.entitlements: dict[str, _Entitlement] = {}
            self.calls: list[Call] = []
            self.down = False
            self.expected_password: str | None = None
            self.passwords: dict[str, str] = {}  # native id -> password (a fake keeps it)
            self.activation_emails: list[dict[str, Any]] = []
            self.access_passes: dict[str, TemporaryAccessPass] = {}
            self._faults: list[_Fault] = []
            self._sequence = 0

    # ---- seeding ----------------------------------------------------------------------------

    def add_entitlement(self, native_id: str, name: str | None = None,
                        kind: str = "group") -> None:
        with self.lock:
            self.entitlements.setdefault(
                native_id, _Entitlement(native_id=native_id, name=name or native_id, kind=kind))

    def add_account(self, username: str, attributes: Mapping[str, Any] | None = None, *,
                    enabled: bool = True, native_id: str | None = None,
                    last_sign_in: datetime | None = None) -> AccountRef:
        """An account that exists before anyone provisions (aggregation, collisions)."""
        with self.lock:
            if self._by_username(username) is not None:
                raise ValueError(f"username {username!r} exists on {self.name}")
            account = _Account(native_id=native_id or self._next_id(), username=username,
                               attributes=dict(attributes or {}), enabled=enabled,
                               last_sign_in=last_sign_in)
            self.accounts[account.native_id] = account
            return AccountRef(native_id=account.native_id, username=username)

    def add_member(self, entitlement: str, account_native_id: str) -> None:
        with self.lock:
            self.entitlements[entitlement].members.add(account_native_id)

    def set_last_sign_in(self, account_native_id: str, when: datetime | None) -> None:
        with self.lock:
            self.accounts[account_native_id].last_sign_in = when

    # ---- faults -----------------------------------------------------------------------------

    def fail_next(self, error: ConnectorError | type[ConnectorError], times: int = 1, *,
                  after_effect: bool = False) -> None:
        """The next ``times`` calls raise ``error``; with ``after_effect`` the change is
        made first (the answer is what gets lost)."""
        instance = error(f"injected {error.__name__}") if isinstance(error, type) else error
        with self.lock:
            self._faults.extend(_Fault(instance, after_effect) for _ in range(times))

    def throttle(self, retry_after: float | None = 30.0, times: int = 1) -> None:
        """The next ``times`` calls answer Throttled with ``retry_after`` seconds."""
        self.fail_next(Throttled(f"{self.name}: too many requests", retry_after=retry_after),
                       times)

    def timeout_next(self, times: int = 1, *, after_effect: bool = False) -> None:
        """The next ``times`` calls time out (after making the change, with ``after_effect``)."""
        self.fail_next(TargetTimeout(f"{self.name}: no answer in time"), times,
                       after_effect=after_effect)

    @property
    def pending_faults(self) -> int:
        with self.lock:
            return len(self._faults)

    # ---- reading back -----------------------------------------------------------------------

    def account(self, username: str) -> AccountInfo | None:
        with self.lock:
            found = self._by_username(username)
            return found.info() if found else None

    def check_password(self, username: str, password: str) -> bool:
        """Whether ``password`` is the one set on the account called ``username``."""
        with self.lock:
            found = self._by_username(username)
            return found is not None and self.passwords.get(found.native_id) == password

    def members(self, entitlement: str) -> set[str]:
        with self.lock:
            return set(self.entitlements[entitlement].members)

    def count(self, method: str, outcome: str | None = OK) -> int:
        """How many ``method`` calls ended with ``outcome`` (None: however they ended)."""
        with self.lock:
            return sum(1 for c in self.calls
                       if c.method == method and (outcome is None or c.outcome == outcome))

    # ---- internals --------------------------------------------------------------------------

    def _next_id(self) -> str:
        self._sequence += 1
        return f"{self.name}-{self._sequence:06d}"

    def _by_username(self, username: str) -> _Account | None:
        wanted = username.casefold()
        for account in self.accounts.values():
            if account.username.casefold() == wanted:
                return account
        return None


def _encode_cursor(after: str) -> str:
    return base64.urlsafe_b64encode(f"after:{after}".encode()).decode("ascii")


def _decode_cursor(cursor: str) -> str:
    try:
        text = base64.urlsafe_b64decode(cursor.encode("ascii")).decode()
    except (binascii.Error, UnicodeError, ValueError):
        raise DataError("invalid listing cursor") from None
    kind, sep, after = text.partition(":")
    if kind != "after" or not sep:
        raise DataError("invalid listing cursor")
    return after


def _page(items: Iterable[tuple[str, T]], cursor: str | None, page_size: int) -> Page[T]:
    if page_size < 1:
        raise DataError("page_size must be at least 1")
    ordered = sorted(items, key=lambda pair: pair[0])
    if cursor is not None:
        after = _decode_cursor(cursor)
        ordered = [pair for pair in ordered if pair[0] > after]
    chunk = ordered[:page_size]
    more = len(ordered) > page_size
    return Page(items=tuple(value for _, value in chunk),
                next_cursor=_encode_cursor(chunk[-1][0]) if more else None)


# What a memory connector declares unless its settings say otherwise.
DEFAULT_CAPABILITIES = ALL_CAPABILITIES | {CAN_SET_PASSWORD}
KNOWN_CAPABILITIES = ALL_CAPABILITIES | frozenset(FIRST_ACCESS_CAPABILITIES)


class MemoryConnector:
    """A connector to a :class:`MemoryTarget`.

    Settings: ``target`` (the target's name, default ``"default"``), ``capabilities``
    (optional list of the declared capabilities, default :data:`DEFAULT_CAPABILITIES`),
    ``identifying_attributes`` (default employeeNumber and mail), ``expected_password``
    (used when the target sets none). Credentials: ``{"password": ...}``.
    """

    kind = "memory"

    def __init__(self, settings: Mapping[str, Any], credentials: Mapping[str, Any]) -> None:
        self.target = MemoryTarget.get(str(settings.get("target", "default")))
        wanted = settings.get("capabilities")
        self.capabilities: frozenset[str] = (
            DEFAULT_CAPABILITIES if wanted is None else KNOWN_CAPABILITIES & frozenset(wanted))
        self._identifying = tuple(settings.get("identifying_attributes",
                                               IDENTIFYING_ATTRIBUTES))
        self._settings_password = settings.get("expected_password")
        self._password = credentials.get("password")

    # ---- the protocol -----------------------------------------------------------------------

    def test_connection(self) -> None:
        with self.target.lock:
            self._call("test_connection", (), None, lambda: None)

    def create_account(self, spec: AccountSpec) -> AccountRef:
        def effect() -> AccountRef:
            if not spec.username:
                raise DataError("an account needs a username")
            existing = self.target._by_username(spec.username)
            if existing is not None:
                for name in self._identifying:
                    mine, theirs = spec.attributes.get(name), existing.attributes.get(name)
                    if mine is not None and theirs is not None and mine != theirs:
                        raise DataError(f"username {spec.username!r} is taken by another "
                                        f"account ({name} differs)")
                return AccountRef(native_id=existing.native_id, username=existing.username)
            account = _Account(native_id=self.target._next_id(), username=spec.username,
                               attributes=dict(spec.attributes), enabled=spec.enabled)
            self.target.accounts[account.native_id] = account
            return AccountRef(native_id=account.native_id, username=account.username)

        return self._run("create_account", (spec.username,), CAN_CREATE, effect)

    def update_account(self, ref: AccountRef, attributes: Mapping[str, Any]) -> None:
        def effect() -> None:
            self._account(ref).attributes.update(attributes)

        self._run("update_account", (ref.native_id, *sorted(attributes)), CAN_UPDATE, effect)

    def enable_account(self, ref: AccountRef) -> None:
        def effect() -> None:
            self._account(ref).enabled = True

        self._run("enable_account", (ref.native_id,), CAN_ENABLE_DISABLE, effect)

    def disable_account(self, ref: AccountRef) -> None:
        def effect() -> None:
            self._account(ref).enabled = False

        self._run("disable_account", (ref.native_id,), CAN_ENABLE_DISABLE, effect)

    def delete_account(self, ref: AccountRef) -> None:
        def effect() -> None:
            if self.target.accounts.pop(ref.native_id, None) is not None:
                for entitlement in self.target.entitlements.values():
                    entitlement.members.discard(ref.native_id)

        self._run("delete_account", (ref.native_id,), CAN_DELETE, effect)

    def grant(self, ref: AccountRef, entitlement: str) -> None:
        def effect() -> None:
            account = self._account(ref)
            found = self.target.entitlements.get(entitlement)
            if found is None:
                raise DataError(f"no entitlement {entitlement!r} on {self.target.name}")
            found.members.add(account.native_id)

        self._run("grant", (ref.native_id, entitlement), CAN_GRANT, effect)

    def revoke(self, ref: AccountRef, entitlement: str) -> None:
        # Absent account, entitlement or membership: the access is already gone.
        def effect() -> None:
            found = self.target.entitlements.get(entitlement)
            if found is not None:
                found.members.discard(ref.native_id)

        self._run("revoke", (ref.native_id, entitlement), CAN_GRANT, effect)

    def list_accounts(self, *, cursor: str | None = None,
                      page_size: int = 500) -> Page[AccountInfo]:
        def effect() -> Page[AccountInfo]:
            return _page(((a.native_id, a.info()) for a in self.target.accounts.values()),
                         cursor, page_size)

        return self._run("list_accounts", (), CAN_LIST_ACCOUNTS, effect)

    def list_entitlements(self, *, cursor: str | None = None,
                          page_size: int = 500) -> Page[EntitlementInfo]:
        def effect() -> Page[EntitlementInfo]:
            return _page(((e.native_id, e.info()) for e in self.target.entitlements.values()),
                         cursor, page_size)

        return self._run("list_entitlements", (), CAN_LIST_ENTITLEMENTS, effect)

    def last_sign_in(self, ref: AccountRef) -> datetime | None:
        def effect() -> datetime | None:
            return self._account(ref).last_sign_in

        return self._run("last_sign_in", (ref.native_id,), CAN_LAST_SIGN_IN, effect)

    def close(self) -> None:
        """Nothing to release."""

    # ---- first access -----------------------------------------------------------------------

    def set_password(self, ref: AccountRef, password: str) -> None:
        def effect() -> None:
            if not password:
                raise DataError("an empty password is refused")
            self.target.passwords[self._account(ref).native_id] = password

        self._run("set_password", (ref.native_id,), CAN_SET_PASSWORD, effect)

    def send_activation_email(self, ref: AccountRef, *, lifespan_seconds: int,
                              actions: Sequence[str] | None = None) -> None:
        def effect() -> None:
            account = self._account(ref)
            email = account.attributes.get("mail") or account.attributes.get("email")
            if not email:
                raise DataError(f"account {account.username!r} has no email address")
            self.target.activation_emails.append({
                "native_id": account.native_id, "email": str(email),
                "actions": list(actions or ("UPDATE_PASSWORD",)),
                "lifespan_seconds": lifespan_seconds})

        self._run("send_activation_email", (ref.native_id,), CAN_ACTIVATION_EMAIL, effect)

    def issue_temporary_access_pass(self, ref: AccountRef, *, lifetime_minutes: int,
                                    usable_once: bool,
                                    starts_at: datetime | None = None) -> TemporaryAccessPass:
        def effect() -> TemporaryAccessPass:
            account = self._account(ref)
            if not 10 <= lifetime_minutes <= 43200:
                raise DataError("lifetime_minutes must be between 10 and 43200")
            issued = TemporaryAccessPass(
                value=base64.b32encode(secrets.token_bytes(10)).decode("ascii"),
                starts_at=starts_at or datetime.now(UTC), lifetime_minutes=lifetime_minutes,
                usable_once=usable_once, method_id=self.target._next_id())
            self.target.access_passes[account.native_id] = issued
            return issued

        return self._run("issue_temporary_access_pass", (ref.native_id,),
                         CAN_TEMPORARY_ACCESS, effect)

    # ---- internals --------------------------------------------------------------------------

    def _account(self, ref: AccountRef) -> _Account:
        account = self.target.accounts.get(ref.native_id)
        if account is None:
            raise DataError(f"no account {ref.native_id!r} on {self.target.name}")
        return account

    def _run(self, method: str, args: tuple[str, ...], capability: str,
             effect: Callable[[], T]) -> T:
        with self.target.lock:
            return self._call(method, args, capability, effect)

    def _call(self, method: str, args: tuple[str, ...], capability: str | None,
              effect: Callable[[], T]) -> T:
        """Log the call, play faults and checks in the order a real target would, then act."""
        target = self.target
        try:
            if capability is not None and capability not in self.capabilities:
                raise NotSupported(f"{method} is not supported by this memory target")
            if target.down:
                raise TargetUnavailable(f"{target.name} is unavailable")
            expected = (target.expected_password if target.expected_password is not None
                        else self._settings_password)
            if expected is not None and self._password != expected:
                raise AuthenticationFailed(f"{target.name} refused the connector's credentials")
            fault = target._faults.pop(0) if target._faults else None
            if fault is not None and not fault.after_effect:
                raise fault.fresh()
            result = effect()
            if fault is not None:
                raise fault.fresh()
        except ConnectorError as error:
            target.calls.append(Call(method, args, error.category))
            raise
        target.calls.append(Call(method, args, OK))
        return result
