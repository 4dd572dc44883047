"""The LDAP connector against a real OpenLDAP slapd, checked with the real ldap-utils."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from connectors import base
from connectors.base import AccountRef, AccountSpec
from connectors.errors import (
    AuthenticationFailed,
    DataError,
    NotSupported,
    PolicyViolation,
    TargetTimeout,
    TargetUnavailable,
)
from connectors.ldap import LdapConnector
from connectors.registry import build
from tests import databases
from tests.connectors.contract import ConnectorContract, all_accounts, all_entitlements
from tests.emulators.tls import make_pki
from tests.slapd import Slapd, available, slapd  # noqa: F401 - the fixture

PEOPLE = "ou=people,dc=example,dc=com"
GROUPS = "ou=groups,dc=example,dc=com"
DISABLED = "ou=disabled,dc=example,dc=com"


def settings_for(server: Slapd, **overrides: Any) -> dict[str, Any]:
    settings: dict[str, Any] = {
        "url": server.url, "bind_dn": server.rootdn, "base_dn": server.suffix,
        "users_ou": "ou=people", "groups_ou": "ou=groups", "disabled_ou": "ou=disabled",
        "disable_method": "move", "pool_size": 2, "timeout_seconds": 2,
    }
    settings.update(overrides)
    return settings


@pytest.fixture
def make_connector(slapd: Slapd) -> Iterator[Any]:  # noqa: F811
    made: list[LdapConnector] = []

    def make(password: str | None = None, server: Slapd | None = None,
             **overrides: Any) -> LdapConnector:
        target = server or slapd
        connector = LdapConnector(settings=settings_for(target, **overrides),
                                  credentials={"bind_password": password or target.rootpw})
        made.append(connector)
        return connector

    yield make
    for connector in made:
        connector.close()


def person(n: int) -> AccountSpec:
    return AccountSpec(username=f"p{n:05d}", attributes={
        "cn": f"Person {n}", "sn": f"Surname{n}", "givenName": "Given",
        "mail": f"p{n}@example.org", "employeeNumber": f"E{n:05d}"})


class TestLdapContract(ConnectorContract):
    @pytest.fixture
    def connector(self, make_connector: Any) -> LdapConnector:
        connector: LdapConnector = make_connector()
        return connector

    @pytest.fixture
    def target_entitlements(self, slapd: Slapd) -> list[str]:  # noqa: F811
        return [slapd.add_group("contract-a"), slapd.add_group("contract-b")]

    def unknown_entitlement(self, target_entitlements: Sequence[str]) -> str:
        return f"cn=contract-no-such-group,{GROUPS}"


# ---- what lands in the directory, read back with ldapsearch ------------------------------

def test_account_and_membership_land_in_the_directory(slapd: Slapd,  # noqa: F811
                                                       make_connector: Any) -> None:
    group = slapd.add_group("payroll")
    connector = make_connector()
    ref = connector.create_account(AccountSpec(username="jsmith", attributes={
        "cn": "Jane Smith", "sn": "Smith", "givenName": "Jane", "mail": "jane@example.org",
        "departmentNumber": "Finance", "employeeNumber": "E1001", "title": None}))
    connector.grant(ref, group)

    assert ref == AccountRef(native_id=f"uid=jsmith,{PEOPLE}", username="jsmith")
    entry = slapd.entry(ref.native_id, ["*", "memberOf"])
    assert entry is not None
    assert sorted(entry.get("objectClass")) == ["inetOrgPerson", "organizationalPerson",
                                                "person", "top"]
    assert entry.get("cn") == ["Jane Smith"]
    assert entry.get("sn") == ["Smith"]
    assert entry.get("givenName") == ["Jane"]
    assert entry.get("mail") == ["jane@example.org"]
    assert entry.get("departmentNumber") == ["Finance"]
    assert entry.get("employeeNumber") == ["E1001"]
    assert entry.get("title") == []
    assert entry.get("memberOf") == [f"cn=payroll,{GROUPS}"]
    groups = slapd.ldapsearch(GROUPS, "(cn=payroll)", ["member"])
    assert [g.get("member") for g in groups] == [[f"cn=payroll,{GROUPS}",
                                                  f"uid=jsmith,{PEOPLE}"]]

    connector.update_account(ref, {"departmentNumber": "Audit", "mail": None})
    entry = slapd.entry(ref.native_id)
    assert entry is not None
    assert entry.get("departmentNumber") == ["Audit"]
    assert entry.get("mail") == []
    assert entry.get("cn") == ["Jane Smith"]

    connector.revoke(ref, group)
    assert slapd.ldapsearch(GROUPS, "(member=uid=jsmith,ou=people,dc=example,dc=com)") == []
    connector.delete_account(ref)
    assert slapd.entry(ref.native_id) is None


def test_revoking_the_last_member_leaves_the_group_placeholder(slapd: Slapd,  # noqa: F811
                                                               make_connector: Any) -> None:
    group = slapd.add_group("solo")
    connector = make_connector()
    ref = connector.create_account(person(1))
    connector.grant(ref, group)
    # remove the placeholder the seeding put in, so that ref is the only member
    slapd.ldapmodify(f"dn: {group}\nchangetype: modify\ndelete: member\nmember: {group}\n")
    connector.revoke(ref, group)
    assert [g.get("member") for g in slapd.ldapsearch(group, scope="base")] == [[group]]
    listed = {e.native_id: e.members for e in all_entitlements(connector)}
    assert listed[group] == ()


def test_configured_placeholder_for_empty_groups(slapd: Slapd,  # noqa: F811
                                                 make_connector: Any) -> None:
    nobody = "cn=nobody,dc=example,dc=com"
    group = slapd.add_group("team", [nobody])
    connector = make_connector(empty_group_member=nobody)
    ref = connector.create_account(person(2))
    connector.grant(ref, group)
    slapd.ldapmodify(f"dn: {group}\nchangetype: modify\ndelete: member\nmember: {nobody}\n")
    connector.revoke(ref, group)
    assert [g.get("member") for g in slapd.ldapsearch(group, scope="base")] == [[nobody]]
    assert {e.native_id: e.members for e in all_entitlements(connector)}[group] == ()


def test_group_of_unique_names(slapd: Slapd, make_connector: Any) -> None:  # noqa: F811
    group = slapd.add_group("auditors", object_class="groupOfUniqueNames")
    slapd.add_group("ignored-plain-group")
    connector = make_connector(group_object_class="groupOfUniqueNames")
    first = connector.create_account(person(3))
    second = connector.create_account(person(4))
    for ref in (first, second, first):
        connector.grant(ref, group)
    entries = slapd.ldapsearch(group, scope="base", attrs=["uniqueMember"])
    assert [e.get("uniqueMember") for e in entries] == [[group, first.native_id,
                                                         second.native_id]]
    listed = all_entitlements(connector)
    assert [(e.native_id, e.name, e.members) for e in listed] == [
        (group, "auditors", (first.native_id, second.native_id))]
    connector.revoke(first, group)
    connector.revoke(second, group)
    connector.revoke(second, group)
    entries = slapd.ldapsearch(group, scope="base", attrs=["uniqueMember"])
    assert [e.get("uniqueMember") for e in entries] == [[group]]


# ---- disable methods -------------------------------------------------------------------

def test_disable_by_move_and_back(slapd: Slapd, make_connector: Any) -> None:  # noqa: F811
    group = slapd.add_group("staff")
    other = slapd.add_group("other")
    connector = make_connector()
    ref = connector.create_account(person(5))
    connector.grant(ref, group)
    connector.grant(ref, other)

    connector.disable_account(ref)
    connector.disable_account(ref)  # the stored DN is stale now: found again by uid
    moved = f"uid=p00005,{DISABLED}"
    assert slapd.entry(ref.native_id) is None
    assert slapd.entry(moved) is not None
    # referential integrity renamed the membership; a revoke with the stale ref finds it
    connector.revoke(ref, other)
    assert [g.get("member") for g in slapd.ldapsearch(other, scope="base")] == [[other]]
    assert [(a.native_id, a.enabled) for a in all_accounts(connector)] == [(moved, False)]

    connector.update_account(ref, {"title": "Leaver"})
    assert slapd.entry(moved, ["title"]) is not None
    assert slapd.entry(moved, ["title"]).get("title") == ["Leaver"]  # type: ignore[union-attr]

    connector.enable_account(ref)
    connector.enable_account(ref)
    assert slapd.entry(moved) is None
    assert [(a.native_id, a.enabled) for a in all_accounts(connector)] == [
        (ref.native_id, True)]
    assert [g.get("member") for g in slapd.ldapsearch(group, scope="base")] == [
        [group, ref.native_id]]


def test_disable_by_attribute(slapd: Slapd, make_connector: Any) -> None:  # noqa: F811
    connector = make_connector(disable_method="attribute",
                               disable_attribute={"employeeType": "disabled"})
    ref = connector.create_account(person(6))
    connector.update_account(ref, {"employeeType": ["contractor"]})
    connector.disable_account(ref)
    connector.disable_account(ref)
    entry = slapd.entry(ref.native_id, ["employeeType"])
    assert entry is not None and entry.get("employeeType") == ["disabled"]
    assert [(a.native_id, a.enabled) for a in all_accounts(connector)] == [
        (ref.native_id, False)]
    connector.enable_account(ref)
    connector.enable_account(ref)
    entry = slapd.entry(ref.native_id, ["employeeType"])
    assert entry is not None and entry.get("employeeType") == []
    assert [a.enabled for a in all_accounts(connector)] == [True]


def test_create_finds_the_account_disabled_by_move(slapd: Slapd,  # noqa: F811
                                                   make_connector: Any) -> None:
    connector = make_connector()
    ref = connector.create_account(person(15))
    connector.disable_account(ref)
    again = connector.create_account(person(15))
    assert again == AccountRef(native_id=f"uid=p00015,{DISABLED}", username="p00015")
    with pytest.raises(DataError):
        connector.create_account(AccountSpec(username="p00015",
                                             attributes={"employeeNumber": "OTHER"}))
    assert [e.dn for e in slapd.ldapsearch(slapd.suffix, "(uid=p00015)", ["1.1"])] == [
        again.native_id]


def test_create_disabled_account(slapd: Slapd, make_connector: Any) -> None:  # noqa: F811
    connector = make_connector()
    spec = AccountSpec(username="late", attributes={"sn": "Late"}, enabled=False)
    ref = connector.create_account(spec)
    assert ref.native_id == f"uid=late,{DISABLED}"
    assert slapd.entry(ref.native_id) is not None


# ---- faults ----------------------------------------------------------------------------

def test_wrong_bind_password_is_authentication_failure(make_connector: Any) -> None:
    password = "Wr0ng-Passw0rd-xyzzy"
    connector = make_connector(password=password)
    for call in (connector.test_connection, lambda: connector.create_account(person(7))):
        with pytest.raises(AuthenticationFailed) as raised:
            call()
        assert raised.value.transient is False
        assert "invalidCredentials" in str(raised.value)
        assert password not in str(raised.value)
        assert password not in repr(raised.value)
    assert password not in repr(connector)


def test_directory_down_then_back(slapd: Slapd, make_connector: Any) -> None:  # noqa: F811
    group = slapd.add_group("ops")
    connector = make_connector()
    first = connector.create_account(person(8))  # the pool holds a live connection now
    slapd.stop()
    with pytest.raises(TargetUnavailable) as raised:
        connector.create_account(person(9))
    assert raised.value.transient is True
    with pytest.raises(TargetUnavailable):
        connector.grant(first, group)
    with pytest.raises(TargetUnavailable):
        connector.list_accounts()
    slapd.start()
    second = connector.create_account(person(9))
    connector.grant(first, group)
    connector.grant(second, group)
    names = sorted(e.get("uid")[0] for e in slapd.ldapsearch(PEOPLE, "(uid=*)", ["uid"]))
    assert names == ["p00008", "p00009"]
    assert [g.get("member") for g in slapd.ldapsearch(group, scope="base")] == [
        [group, first.native_id, second.native_id]]


def test_directory_that_does_not_answer_times_out(slapd: Slapd,  # noqa: F811
                                                  make_connector: Any) -> None:
    connector = make_connector(timeout_seconds=1)
    connector.test_connection()
    slapd.pause()
    try:
        with pytest.raises(TargetTimeout) as raised:
            connector.create_account(person(10))
        assert raised.value.transient is True
    finally:
        slapd.resume()
    connector.create_account(person(10))
    assert slapd.entry(f"uid=p00010,{PEOPLE}") is not None


@pytest.mark.parametrize(("operation", "expected"), [
    ("grant_to_malformed_group", DataError),
    ("update_malformed_account", DataError),
    ("attribute_outside_object_classes", DataError),
    ("unknown_attribute", DataError),
    ("grant_to_missing_group", DataError),
])
def test_bad_input_is_data_error(slapd: Slapd, make_connector: Any,  # noqa: F811
                                 operation: str, expected: type[Exception]) -> None:
    connector = make_connector()
    ref = connector.create_account(person(11))
    calls = {
        "grant_to_malformed_group": lambda: connector.grant(ref, "cn=x,,==ou=groups"),
        "update_malformed_account": lambda: connector.update_account(
            AccountRef(native_id="uid=a,,=b", username=""), {"sn": "x"}),
        "attribute_outside_object_classes": lambda: connector.create_account(
            AccountSpec(username="posix", attributes={"gidNumber": "100"})),
        "unknown_attribute": lambda: connector.update_account(ref, {"noSuchAttr": "x"}),
        "grant_to_missing_group": lambda: connector.grant(ref, f"cn=missing,{GROUPS}"),
    }
    with pytest.raises(expected) as raised:
        calls[operation]()
    assert raised.value.transient is False  # type: ignore[attr-defined]
    assert str(raised.value).startswith("LDAP ")


def test_insufficient_rights_is_policy_violation(slapd: Slapd,  # noqa: F811
                                                 make_connector: Any) -> None:
    reader = slapd.add_person("reader", {"userPassword": "reader-pass"})
    connector = make_connector(password="reader-pass", bind_dn=reader)
    connector.test_connection()  # may read (slapd's default access), may not write
    with pytest.raises(PolicyViolation) as raised:
        connector.create_account(person(12))
    assert "insufficientAccessRights" in str(raised.value)


def test_settings_are_checked_without_io() -> None:
    good: dict[str, Any] = {"url": "ldap://127.0.0.1:1", "bind_dn": "cn=a", "users_ou": "ou=p",
            "groups_ou": "ou=g", "disabled_ou": "ou=d"}
    LdapConnector(settings=good, credentials={"bind_password": "x"}).close()
    cases: list[tuple[dict[str, Any], dict[str, str]]] = [
        ({**good, "url": "http://x"}, {"bind_password": "x"}),
        ({**good, "disable_method": "attribute"}, {"bind_password": "x"}),
        ({**good, "group_object_class": "posixGroup"}, {"bind_password": "x"}),
        ({**good, "url": "ldaps://x", "start_tls": True}, {"bind_password": "x"}),
        (good, {}),
    ]
    for broken, credentials in cases:
        with pytest.raises(DataError):
            LdapConnector(settings=broken, credentials=credentials)


def test_registry_builds_it_and_capabilities(slapd: Slapd) -> None:  # noqa: F811
    connector = build("ldap", settings_for(slapd), {"bind_password": slapd.rootpw})
    try:
        assert isinstance(connector, LdapConnector)
        assert base.CAN_LAST_SIGN_IN not in connector.capabilities
        with pytest.raises(NotSupported):
            connector.last_sign_in(AccountRef(native_id=f"uid=x,{PEOPLE}", username="x"))
    finally:
        connector.close()


def test_last_sign_in_from_a_configured_attribute(slapd: Slapd,  # noqa: F811
                                                  make_connector: Any) -> None:
    # plain slapd keeps no sign-in time; an operational timestamp stands in for one
    connector = make_connector(last_sign_in_attribute="createTimestamp")
    assert base.CAN_LAST_SIGN_IN in connector.capabilities
    ref = connector.create_account(person(13))
    value = connector.last_sign_in(ref)
    assert isinstance(value, datetime) and value.tzinfo is not None
    [info] = all_accounts(connector)
    assert info.last_sign_in == value


# ---- paging, pool, TLS -----------------------------------------------------------------

def test_paged_listing_over_1200_accounts(slapd: Slapd, make_connector: Any) -> None:  # noqa: F811
    ldif = "\n".join(
        f"dn: uid=bulk{n:04d},{PEOPLE}\nobjectClass: inetOrgPerson\nuid: bulk{n:04d}\n"
        f"cn: Bulk {n}\nsn: Bulk\n" for n in range(1200))
    slapd.ldapadd(ldif)
    connector = make_connector(page_size=500)
    sizes: list[int] = []
    names: list[str] = []
    cursor = None
    while True:
        page = connector.list_accounts(cursor=cursor, page_size=500)
        sizes.append(len(page.items))
        names.extend(a.username for a in page.items)
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert sizes == [500, 500, 200]
    assert sorted(names) == [f"bulk{n:04d}" for n in range(1200)]
    with pytest.raises(DataError):
        connector.list_accounts(cursor="no-such-cursor")


def test_interleaved_listings_and_server_size_limit(slapd: Slapd,  # noqa: F811
                                                    make_connector: Any) -> None:
    for n in range(7):
        slapd.add_group(f"g{n}")
    slapd.ldapadd("\n".join(f"dn: uid=u{n},{PEOPLE}\nobjectClass: inetOrgPerson\nuid: u{n}\n"
                            f"cn: u{n}\nsn: u\n" for n in range(7)))
    connector = make_connector(page_size=2, pool_size=1)
    accounts = connector.list_accounts(page_size=3)
    groups = connector.list_entitlements(page_size=3)
    assert accounts.next_cursor and groups.next_cursor
    rest_accounts = all_accounts_from(connector, accounts.next_cursor)
    rest_groups = connector.list_entitlements(cursor=groups.next_cursor, page_size=10)
    assert len(accounts.items) + len(rest_accounts) == 7
    assert len(groups.items) + len(rest_groups.items) == 7
    connector.test_connection()  # the single pooled connection came back


def all_accounts_from(connector: LdapConnector, cursor: str) -> list[Any]:
    found: list[Any] = []
    next_cursor: str | None = cursor
    while next_cursor is not None:
        page = connector.list_accounts(cursor=next_cursor, page_size=3)
        found.extend(page.items)
        next_cursor = page.next_cursor
    return found


def test_pool_serves_threads(slapd: Slapd, make_connector: Any) -> None:  # noqa: F811
    group = slapd.add_group("crowd")
    connector = make_connector(pool_size=3)
    failures: list[BaseException] = []

    def work(offset: int) -> None:
        try:
            for n in range(offset, offset + 25):
                connector.grant(connector.create_account(person(n)), group)
        except BaseException as exc:  # reported by the assertion below
            failures.append(exc)

    threads = [threading.Thread(target=work, args=(100 * t,)) for t in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert len(slapd.ldapsearch(PEOPLE, "(uid=*)", ["1.1"])) == 150
    [entry] = slapd.ldapsearch(group, scope="base", attrs=["member"])
    assert len(entry.get("member")) == 151


def test_start_tls_verifies_the_server(tmp_path: Path) -> None:
    if not available():
        databases.missing("slapd")
    pki = make_pki(tmp_path / "pki")
    server = Slapd(tmp_path / "tls-slapd", tls=(pki.cert_file, pki.key_file))
    server.start()
    made: list[LdapConnector] = []
    try:
        trusted = LdapConnector(settings=settings_for(server, start_tls=True,
                                                      ca_file=str(pki.ca_file)),
                                credentials={"bind_password": server.rootpw})
        made.append(trusted)
        ref = trusted.create_account(person(14))
        assert server.entry(ref.native_id) is not None
        untrusted = LdapConnector(settings=settings_for(server, start_tls=True),
                                  credentials={"bind_password": server.rootpw})
        made.append(untrusted)
        with pytest.raises(AuthenticationFailed) as raised:
            untrusted.test_connection()
        assert "certificate" in str(raised.value)
    finally:
        for connector in made:
            connector.close()
        server.stop()


def test_listing_leaves_out_passwords_and_binary_values(slapd: Slapd,  # noqa: F811
                                                        make_connector: Any) -> None:
    slapd.ldapadd(f"dn: uid=photo,{PEOPLE}\nobjectClass: inetOrgPerson\nuid: photo\n"
                  "cn: Photo\nsn: Photo\nuserPassword: not-for-listing\n"
                  "jpegPhoto:: /9j/4AAQ\n")
    connector = make_connector()
    [info] = all_accounts(connector)
    assert sorted(info.attributes) == ["cn", "objectClass", "sn", "uid"]
    assert (info.native_id, info.username, info.enabled) == (f"uid=photo,{PEOPLE}", "photo",
                                                             True)


def test_grant_many_adds_each_group_s_members_in_one_modify(slapd: Slapd,  # noqa: F811
                                                             make_connector: Any) -> None:
    payroll, share = slapd.add_group("payroll"), slapd.add_group("share")
    connector = make_connector()
    refs = [connector.create_account(person(n)) for n in range(3)]
    connector.grant_many([(refs[0], payroll), (refs[1], payroll), (refs[2], share),
                          (refs[1], payroll)])
    members = {g.dn: set(g.get("member")) for g in slapd.ldapsearch(GROUPS, "(cn=*)",
                                                                     ["member"], scope="one")}
    assert members[payroll] == {payroll, refs[0].native_id, refs[1].native_id}
    assert members[share] == {share, refs[2].native_id}

    # A member already there makes that group's modify refused whole (the engine then grants
    # one by one): the group is left as it was.
    with pytest.raises(DataError):
        connector.grant_many([(refs[2], payroll), (refs[0], payroll)])
    after = slapd.ldapsearch(GROUPS, "(cn=payroll)", ["member"])
    assert set(after[0].get("member")) == {payroll, refs[0].native_id, refs[1].native_id}
