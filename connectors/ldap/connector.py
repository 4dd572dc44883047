"""The LDAP connector (ldap3): inetOrgPerson accounts, groupOfNames/groupOfUniqueNames
memberships, disable by move or by attribute, paged listings, StartTLS or LDAPS, a pool of
bound connections.

Native ids: an account is its DN, an entitlement its group's DN. Disabling by move changes
the account's DN while the stored native id stays the old one: every operation that does not
find the DN looks the account up again by its RDN value (the username) under the users and
disabled OUs.

Groups: both object classes require a member, so revoking the last one leaves a placeholder
in its place: ``empty_group_member`` when set, else the group's own DN. Listings leave the
placeholder out of the members.
"""

from __future__ import annotations

import functools
import math
import re
import secrets
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar

from ldap3 import (
    BASE,
    HASHED_SALTED_SHA,
    LEVEL,
    MODIFY_ADD,
    MODIFY_DELETE,
    MODIFY_REPLACE,
    NONE,
    SYNC,
    Connection,
    Server,
)
from ldap3.core import exceptions as ldap_exc
from ldap3.utils.conv import escape_filter_chars
from ldap3.utils.dn import escape_rdn, parse_dn
from ldap3.utils.hashed import hashed

from connectors import base
from connectors.base import AccountInfo, AccountRef, AccountSpec, EntitlementInfo, Page
from connectors.errors import ConnectorError, DataError, NotSupported
from connectors.ldap import errors
from connectors.ldap.config import LdapSettings, parse_settings
from connectors.ldap.listing import PAGED_RESULTS_OID, Listing, Listings, timestamp
from connectors.ldap.pool import ConnectionPool, unbind_quietly
from connectors.ldap.tls import VerifiedTls

T = TypeVar("T")
Result = dict[str, Any]
HIDDEN_ATTRIBUTES = frozenset({"userpassword"})


def _values(value: Any) -> list[str]:
    """An attribute value as LDAP values: None and empty strings are no value."""
    if value is None:
        return []
    if isinstance(value, list | tuple | set | frozenset):
        return [str(v) for v in value if v is not None and str(v) != ""]
    return [] if str(value) == "" else [str(value)]


def _binary(value: Any) -> bool:
    """Binary values (photos, certificates) stay out of listings: they are not data the
    core compares, and they do not serialise."""
    values = value if isinstance(value, list | tuple) else [value]
    return any(isinstance(v, bytes | bytearray) for v in values)


def _norm(dn: str) -> str:
    """A DN compared the way the directory does for our purposes (case, spaces)."""
    try:
        return ",".join(f"{attr.strip()}={value.strip()}" for attr, value, _ in parse_dn(dn)
                        ).casefold()
    except ldap_exc.LDAPInvalidDnError:
        return dn.strip().casefold()


@functools.lru_cache(maxsize=4096)
def _dn_problem(dn: str) -> str | None:
    """Why ``dn`` is not a well-formed DN (spaces after commas tolerated), or None."""
    try:
        parse_dn(re.sub(r"(?<!\\),\s+", ",", dn))
    except ldap_exc.LDAPInvalidDnError as exc:
        return str(exc)
    return None


def _checked(dn: str, what: str) -> str:
    """``dn`` when it is a well-formed DN, else DataError."""
    problem = _dn_problem(dn)
    if problem is not None:
        raise DataError(f"LDAP {what}: malformed DN {dn!r} ({problem})")
    return dn


def _under(dn: str, parent: str) -> bool:
    return _norm(dn).endswith("," + _norm(parent))


def _rdn(dn: str) -> tuple[str, str]:
    attr, value, _ = parse_dn(dn)[0]
    return attr, value


class LdapConnector:
    """One LDAP directory; settings as in :mod:`connectors.ldap.config`, credentials
    ``{"bind_password": ...}``."""

    kind = "ldap"

    def __init__(self, settings: Mapping[str, Any], credentials: Mapping[str, Any]) -> None:
        self.settings: LdapSettings = parse_settings(settings)
        password = credentials.get("bind_password")
        if not isinstance(password, str) or not password:
            raise DataError("LDAP credential 'bind_password' is required")
        self._password = password
        capabilities = {base.CAN_CREATE, base.CAN_UPDATE, base.CAN_ENABLE_DISABLE,
                        base.CAN_DELETE, base.CAN_GRANT, base.CAN_LIST_ACCOUNTS,
                        base.CAN_LIST_ENTITLEMENTS, base.CAN_SET_PASSWORD}
        if self.settings.last_sign_in_attribute:
            capabilities.add(base.CAN_LAST_SIGN_IN)
        self.capabilities: frozenset[str] = frozenset(capabilities)
        tls = None
        if self.settings.use_ssl or self.settings.start_tls:
            tls = VerifiedTls(self.settings.ca_file)
        self._tls = tls
        self._pool = ConnectionPool(self._open, self.settings.pool_size)
        # callers may make this many calls at once (the provisioning engine does)
        self.max_concurrency = self.settings.pool_size
        self._listings = Listings(self._end_listing)

    def __repr__(self) -> str:
        return f"LdapConnector({self.settings.url!r}, bind_dn={self.settings.bind_dn!r})"

    # -- connections -----------------------------------------------------------------
    def _open(self) -> Connection:
        what = f"bind to {self.settings.url} as {self.settings.bind_dn}"
        # A Server per connection: ldap3 marks a server's address unavailable after a failed
        # connect and keeps refusing it for a while, even once the directory is back.
        server = Server(self.settings.url, use_ssl=self.settings.use_ssl, tls=self._tls,
                        get_info=NONE, connect_timeout=self.settings.timeout_seconds)
        conn = Connection(server, user=self.settings.bind_dn, password=self._password,
                          client_strategy=SYNC, raise_exceptions=False, read_only=False,
                          # ldap3 packs it into SO_RCVTIMEO as an integer of seconds
                          receive_timeout=max(1, math.ceil(self.settings.timeout_seconds)),
                          return_empty_attributes=False)
        try:
            conn.open(read_server_info=False)
            if self.settings.start_tls and not conn.start_tls(read_server_info=False):
                raise errors.from_result(conn.result or {}, f"StartTLS with {self.settings.url}")
            if not conn.bind(read_server_info=False):
                raise errors.from_result(conn.result or {}, what, self._password)
        except BaseException as exc:
            unbind_quietly(conn)
            if isinstance(exc, ConnectorError):
                raise
            if isinstance(exc, Exception):
                raise errors.from_exception(exc, what, self._password) from None
            raise
        return conn

    def _call(self, what: str, operation: Callable[[Connection], T]) -> T:
        """Run ``operation`` on a pooled connection; a reused connection that turns out
        broken (the server restarted) is replaced once, operations being idempotent."""
        for attempt in (1, 2):
            conn, fresh = self._pool.acquire()
            try:
                value = operation(conn)
            except Exception as exc:
                if errors.is_connection_broken(exc):
                    self._pool.discard(conn)
                    if not fresh and attempt == 1 and not errors.is_timeout(exc):
                        continue
                else:
                    self._pool.release(conn)
                raise errors.from_exception(exc, what, self._password) from None
            except BaseException:
                self._pool.discard(conn)
                raise
            self._pool.release(conn)
            return value
        raise AssertionError("unreachable")

    # -- small LDAP operations (each returns the server's result) --------------------
    def _modify(self, dn: str, changes: Mapping[str, Any], what: str) -> Result:
        def run(conn: Connection) -> Result:
            conn.modify(dn, dict(changes))
            return dict(conn.result)
        return self._call(what, run)

    def _read(self, dn: str, attributes: list[str], what: str) -> dict[str, Any] | None:
        def run(conn: Connection) -> dict[str, Any] | None:
            conn.search(dn, "(objectClass=*)", search_scope=BASE, attributes=attributes)
            code = conn.result.get("result")
            if code == errors.NO_SUCH_OBJECT:
                return None
            if code != errors.SUCCESS:
                raise errors.from_result(conn.result, what)
            for item in conn.response or []:
                if item.get("type") == "searchResEntry":
                    return {"dn": item["dn"], "attributes": dict(item["attributes"])}
            return None
        return self._call(what, run)

    def _find_by_name(self, username: str, attributes: list[str]) -> dict[str, Any] | None:
        """The account named ``username`` under the users (and disabled) OU, or None."""
        flt = f"({self.settings.rdn_attribute}={escape_filter_chars(username)})"
        for where in self.settings.account_bases:
            def run(conn: Connection, where: str = where) -> dict[str, Any] | None:
                conn.search(where, flt, search_scope=LEVEL, attributes=attributes)
                if conn.result.get("result") not in (errors.SUCCESS, errors.NO_SUCH_OBJECT):
                    raise errors.from_result(conn.result, f"search for {username} in {where}")
                for item in conn.response or []:
                    if item.get("type") == "searchResEntry":
                        return {"dn": item["dn"], "attributes": dict(item["attributes"])}
                return None
            found = self._call(f"search for {username}", run)
            if found is not None:
                return found
        return None

    def _username(self, ref: AccountRef) -> str:
        if ref.username:
            return ref.username
        try:
            return _rdn(ref.native_id)[1]
        except ldap_exc.LDAPInvalidDnError as exc:
            raise DataError(f"LDAP: malformed account DN {ref.native_id!r}") from exc

    def _relocate(self, ref: AccountRef) -> str | None:
        """The account's current DN when ``ref.native_id`` is gone (moved), or None."""
        found = self._find_by_name(self._username(ref), ["1.1"])
        return None if found is None else str(found["dn"])

    def _on_account(self, ref: AccountRef, what: str,
                    operation: Callable[[str], Result]) -> tuple[str, Result]:
        """Run ``operation(dn)``; when the DN is not found, once more on the relocated DN.
        DataError when the account is nowhere."""
        result = operation(_checked(ref.native_id, what))
        if result.get("result") != errors.NO_SUCH_OBJECT:
            return ref.native_id, result
        current = self._relocate(ref)
        if current is None or _norm(current) == _norm(ref.native_id):
            raise DataError(f"LDAP {what}: account {ref.native_id} not found")
        return current, operation(current)

    def _raise_unless(self, result: Result, what: str, *accepted: int) -> None:
        if result.get("result") not in (errors.SUCCESS, *accepted):
            raise errors.from_result(result, what)

    # -- the protocol ----------------------------------------------------------------
    def test_connection(self) -> None:
        for ou in (self.settings.users_ou, self.settings.groups_ou,
                   *(self.settings.account_bases[1:])):
            if self._read(ou, ["1.1"], f"read {ou}") is None:
                raise DataError(f"LDAP: {ou} does not exist")

    def create_account(self, spec: AccountSpec) -> AccountRef:
        username = spec.username.strip()
        if not username:
            raise DataError("LDAP create: empty username")
        s = self.settings
        attributes: dict[str, Any] = {}
        for name, value in spec.attributes.items():
            values = _values(value)
            if values and name.lower() != "objectclass":
                attributes[name] = values
        attributes[s.rdn_attribute] = [username]
        attributes.setdefault("cn", [username])
        attributes.setdefault("sn", [username])
        attributes["objectClass"] = list(s.user_object_classes)
        if s.random_initial and not any(
                name.lower() == "userpassword" for name in attributes):
            # Known to nobody: never stored, logged or returned; the person sets their own.
            attributes["userPassword"] = [secrets.token_urlsafe(24)]
        parent = s.users_ou
        if not spec.enabled:
            if s.disable_attribute is not None:
                attributes[s.disable_attribute[0]] = [s.disable_attribute[1]]
            elif s.disabled_ou:
                parent = s.disabled_ou
        rdn = f"{s.rdn_attribute}={escape_rdn(username)}"
        dn = f"{rdn},{parent}"
        what = f"create {dn}"
        for elsewhere in s.account_bases:
            if _norm(elsewhere) == _norm(parent):
                continue
            # the same name disabled by move: that account, not a second one
            existing = self._read(f"{rdn},{elsewhere}", list(s.identifying_attributes), what)
            if existing is not None:
                self._check_same_person(spec, existing["attributes"], str(existing["dn"]))
                return AccountRef(native_id=str(existing["dn"]), username=username)

        def run(conn: Connection) -> Result:
            conn.add(dn, attributes=attributes)
            return dict(conn.result)
        result = self._call(what, run)
        if result.get("result") == errors.SUCCESS:
            return AccountRef(native_id=dn, username=username)
        if result.get("result") != errors.ENTRY_ALREADY_EXISTS:
            raise errors.from_result(result, what)
        existing = self._read(dn, list(s.identifying_attributes), what)
        if existing is None:  # deleted in between: the caller retries
            raise DataError(f"LDAP {what}: exists and vanished; try again")
        self._check_same_person(spec, existing["attributes"], dn)
        return AccountRef(native_id=str(existing["dn"]), username=username)

    def _check_same_person(self, spec: AccountSpec, have: Mapping[str, Any], dn: str) -> None:
        lowered = {k.lower(): v for k, v in have.items()}
        for name in self.settings.identifying_attributes:
            wanted = {v.casefold() for v in _values(spec.attributes.get(name))}
            if not wanted:
                continue
            present = {v.casefold() for v in _values(lowered.get(name.lower()))}
            if wanted != present:
                raise DataError(f"LDAP create: {dn} exists and belongs to someone else "
                                f"({name} differs)")

    def update_account(self, ref: AccountRef, attributes: Mapping[str, Any]) -> None:
        rdn_attr = self.settings.rdn_attribute.lower()
        changes: dict[str, Any] = {}
        for name, value in attributes.items():
            values = _values(value)
            if name.lower() == "objectclass":
                raise DataError("LDAP update: objectClass cannot be changed")
            if name.lower() == rdn_attr and [v.casefold() for v in values] == [
                    self._username(ref).casefold()]:
                continue
            changes[name] = [(MODIFY_REPLACE, values)]
        if not changes:
            return
        what = f"update {ref.native_id}"
        _, result = self._on_account(ref, what, lambda dn: self._modify(dn, changes, what))
        self._raise_unless(result, what)

    def disable_account(self, ref: AccountRef) -> None:
        self._set_enabled(ref, False)

    def enable_account(self, ref: AccountRef) -> None:
        self._set_enabled(ref, True)

    def _set_enabled(self, ref: AccountRef, enabled: bool) -> None:
        s = self.settings
        what = f"{'enable' if enabled else 'disable'} {ref.native_id}"
        if s.disable_attribute is not None:
            name, value = s.disable_attribute
            change = {name: [(MODIFY_DELETE, [value])] if enabled else [(MODIFY_REPLACE, [value])]}
            _, result = self._on_account(ref, what, lambda dn: self._modify(dn, change, what))
            self._raise_unless(result, what, errors.NO_SUCH_ATTRIBUTE)
            return
        assert s.disabled_ou is not None
        target = s.users_ou if enabled else s.disabled_ou
        dn = _checked(ref.native_id, what)
        if self._read(dn, ["1.1"], what) is None:
            found = self._relocate(ref)
            if found is None:
                raise DataError(f"LDAP {what}: account not found")
            dn = found
        if _under(dn, target):
            return
        attr, value = _rdn(dn)
        relative = f"{attr}={escape_rdn(value)}"

        def run(conn: Connection) -> Result:
            conn.modify_dn(dn, relative, new_superior=target)
            return dict(conn.result)
        self._raise_unless(self._call(what, run), what)

    def delete_account(self, ref: AccountRef) -> None:
        what = f"delete {ref.native_id}"
        dn: str | None = _checked(ref.native_id, what)
        if self._read(ref.native_id, ["1.1"], what) is None:
            dn = self._relocate(ref)
        if dn is None:
            return
        for group in self._groups_of(dn):
            self._remove_member(group, dn)

        def run(conn: Connection) -> Result:
            conn.delete(dn)
            return dict(conn.result)
        self._raise_unless(self._call(what, run), what, errors.NO_SUCH_OBJECT)

    def _groups_of(self, dn: str) -> list[str]:
        s = self.settings
        flt = f"(&(objectClass={s.group_object_class})({s.member_attribute}="\
              f"{escape_filter_chars(dn)}))"

        def run(conn: Connection) -> list[str]:
            conn.search(s.groups_ou, flt, attributes=["1.1"])
            self._raise_unless(dict(conn.result), f"search groups of {dn}")
            return [str(i["dn"]) for i in conn.response or [] if i.get("type") == "searchResEntry"]
        return self._call(f"search groups of {dn}", run)

    def grant(self, ref: AccountRef, entitlement: str) -> None:
        what = f"add {ref.native_id} to {entitlement}"
        _checked(entitlement, what)
        _checked(ref.native_id, what)
        change = {self.settings.member_attribute: [(MODIFY_ADD, [ref.native_id])]}
        result = self._modify(entitlement, change, what)
        if result.get("result") == errors.NO_SUCH_OBJECT:
            raise DataError(f"LDAP {what}: group {entitlement} not found")
        self._raise_unless(result, what, errors.ATTRIBUTE_OR_VALUE_EXISTS)

    def grant_many(self, pairs: Sequence[tuple[AccountRef, str]]) -> None:
        """Several grants at once (the provisioning engine's batches): one modify per group
        adding all its new members. The directory applies a modify whole or not at all, so
        when one is refused (a member already there, a group or an entry missing) this
        raises and that group is unchanged; the engine then grants one by one (``grant``
        accepts a member already there)."""
        by_group: dict[str, list[str]] = {}
        for ref, entitlement in pairs:
            what = f"add {ref.native_id} to {entitlement}"
            _checked(entitlement, what)
            _checked(ref.native_id, what)
            members = by_group.setdefault(entitlement, [])
            if ref.native_id not in members:
                members.append(ref.native_id)
        for group, members in by_group.items():
            what = f"add {len(members)} members to {group}"
            change = {self.settings.member_attribute: [(MODIFY_ADD, members)]}
            self._raise_unless(self._modify(group, change, what), what)

    def revoke(self, ref: AccountRef, entitlement: str) -> None:
        removed = self._remove_member(entitlement, ref.native_id)
        if not removed and self.settings.disable_method == "move":
            current = self._relocate(ref)  # a disabled account has moved
            if current is not None and _norm(current) != _norm(ref.native_id):
                self._remove_member(entitlement, current)

    def _remove_member(self, group: str, member: str) -> bool:
        """Remove ``member``; True when it was there. The last member is replaced by the
        placeholder in the same modify, so the group stays valid."""
        attr = self.settings.member_attribute
        what = f"remove {member} from {group}"
        _checked(group, what)
        _checked(member, what)
        result = self._modify(group, {attr: [(MODIFY_DELETE, [member])]}, what)
        code = result.get("result")
        if code in (errors.NO_SUCH_ATTRIBUTE, errors.NO_SUCH_OBJECT):
            return False
        if code == errors.OBJECT_CLASS_VIOLATION:
            placeholder = self.settings.empty_group_member or group
            result = self._modify(group, {attr: [(MODIFY_DELETE, [member]),
                                                 (MODIFY_ADD, [placeholder])]}, what)
        self._raise_unless(result, what)
        return True

    def last_sign_in(self, ref: AccountRef) -> datetime | None:
        attribute = self.settings.last_sign_in_attribute
        if attribute is None:
            raise NotSupported("LDAP: no last_sign_in_attribute configured")
        what = f"read {attribute} of {ref.native_id}"
        entry = self._read(ref.native_id, [attribute], what)
        if entry is None:
            entry = self._find_by_name(self._username(ref), [attribute])
        if entry is None:
            raise DataError(f"LDAP {what}: account not found")
        return timestamp(entry["attributes"].get(attribute))

    def set_password(self, ref: AccountRef, password: str) -> None:
        """Replace userPassword with a salted SHA hash ({SSHA}, which slapd verifies on bind
        without extra modules); the password itself never reaches a message."""
        what = f"set the password of {ref.native_id}"
        change = {"userPassword": [(MODIFY_REPLACE, [hashed(HASHED_SALTED_SHA, password)])]}
        _, result = self._on_account(ref, what, lambda dn: self._modify(dn, change, what))
        self._raise_unless(result, what)

    # -- listings --------------------------------------------------------------------
    def list_accounts(self, *, cursor: str | None = None,
                      page_size: int = 500) -> Page[AccountInfo]:
        s = self.settings
        attributes = ["*"] + ([s.last_sign_in_attribute] if s.last_sign_in_attribute else [])
        flt = f"(objectClass={s.user_object_classes[0]})"
        items, token = self._page(cursor, page_size, s.account_bases, flt, attributes)
        return Page(items=tuple(self._account_info(i) for i in items), next_cursor=token)

    def list_entitlements(self, *, cursor: str | None = None,
                          page_size: int = 500) -> Page[EntitlementInfo]:
        s = self.settings
        flt = f"(objectClass={s.group_object_class})"
        items, token = self._page(cursor, page_size, (s.groups_ou,), flt,
                                  ["cn", s.member_attribute])
        return Page(items=tuple(self._entitlement_info(i) for i in items), next_cursor=token)

    def _account_info(self, item: dict[str, Any]) -> AccountInfo:
        s = self.settings
        dn = str(item["dn"])
        attrs = {k: v for k, v in item["attributes"].items()
                 if k.lower() not in HIDDEN_ATTRIBUTES and not _binary(v)}
        if s.disable_attribute is not None:
            name, value = s.disable_attribute
            have = {v.casefold() for v in _values(next(
                (v for k, v in attrs.items() if k.lower() == name.lower()), None))}
            enabled = value.casefold() not in have
        else:
            enabled = not (s.disabled_ou is not None and _under(dn, s.disabled_ou))
        last = None
        if s.last_sign_in_attribute:
            last = timestamp(next((v for k, v in attrs.items()
                                    if k.lower() == s.last_sign_in_attribute.lower()), None))
        return AccountInfo(native_id=dn, username=_rdn(dn)[1], attributes=attrs,
                           enabled=enabled, last_sign_in=last)

    def _entitlement_info(self, item: dict[str, Any]) -> EntitlementInfo:
        dn = str(item["dn"])
        attrs = {k.lower(): v for k, v in item["attributes"].items()}
        skip = {_norm(dn)}
        if self.settings.empty_group_member:
            skip.add(_norm(self.settings.empty_group_member))
        members = tuple(m for m in _values(attrs.get(self.settings.member_attribute.lower()))
                        if _norm(m) not in skip)
        names = _values(attrs.get("cn"))
        return EntitlementInfo(native_id=dn, name=names[0] if names else _rdn(dn)[1],
                               kind="group", members=members)

    def _page(self, cursor: str | None, page_size: int, bases: tuple[str, ...], flt: str,
              attributes: list[str]) -> tuple[list[dict[str, Any]], str | None]:
        if cursor is None:
            # a connection of the listing's own, outside the pool: parked listings must not
            # starve the pool (nor each other)
            listing = Listing(bases=bases, search_filter=flt, attributes=attributes,
                              connection=self._open())
        else:
            found = self._listings.take(cursor)
            if found is None:
                raise DataError("LDAP listing: cursor unknown or expired; start again")
            listing = found
        items: list[dict[str, Any]] = []
        try:
            while len(items) < max(1, page_size):
                if listing.buffer:
                    items.append(listing.buffer.popleft())
                elif listing.done:
                    break
                else:
                    self._fetch(listing)
        except Exception as exc:
            self._end_listing(listing)
            if isinstance(exc, ConnectorError):
                raise
            raise errors.from_exception(exc, "list", self._password) from None
        if listing.done and not listing.buffer:
            self._end_listing(listing)
            return items, None
        return items, self._listings.park(listing)

    def _fetch(self, listing: Listing) -> None:
        """One server page into the listing's buffer."""
        where = listing.bases[listing.base_index]
        conn = listing.connection
        conn.search(where, listing.search_filter, search_scope=LEVEL,
                    attributes=listing.attributes, paged_size=self.settings.page_size,
                    paged_cookie=listing.cookie)
        result = dict(conn.result)
        if result.get("result") != errors.SUCCESS:
            raise errors.from_result(result, f"list {where}")
        listing.buffer.extend({"dn": i["dn"], "attributes": dict(i["attributes"])}
                              for i in conn.response or [] if i.get("type") == "searchResEntry")
        control = (result.get("controls") or {}).get(PAGED_RESULTS_OID) or {}
        cookie = (control.get("value") or {}).get("cookie")
        if cookie:
            listing.cookie = cookie
        else:
            listing.cookie = None
            listing.base_index += 1

    def _end_listing(self, listing: Listing) -> None:
        conn, listing.connection = listing.connection, None
        if conn is not None:
            unbind_quietly(conn)

    def close(self) -> None:
        self._listings.close()
        self._pool.close()

