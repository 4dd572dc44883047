"""First access on a directory: a password the person chose, set as a salted hash on the
real slapd (and the person can bind with it), and the in-memory fake's first-access
capabilities."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from connectors import registry
from connectors.base import (
    CAN_ACTIVATION_EMAIL,
    CAN_SET_PASSWORD,
    CAN_TEMPORARY_ACCESS,
    AccountSpec,
    first_access_method,
)
from connectors.errors import DataError, NotSupported
from connectors.ldap import LdapConnector
from connectors.memory import MemoryConnector, MemoryTarget
from tests.connectors.test_ldap import settings_for
from tests.slapd import Slapd, can_bind, slapd  # noqa: F401 - the fixture

PASSWORD = "Correct horse battery 2026"


def test_ldap_sets_a_hashed_password_the_person_binds_with(slapd: Slapd) -> None:  # noqa: F811
    connector = LdapConnector(settings=settings_for(slapd),
                              credentials={"bind_password": slapd.rootpw})
    try:
        assert first_access_method(connector) == CAN_SET_PASSWORD
        ref = connector.create_account(AccountSpec(username="jsmith", attributes={
            "givenName": "Jane", "sn": "Smith", "mail": "jane.smith@example.com"}))
        assert not can_bind(slapd, ref.native_id, PASSWORD)
        connector.set_password(ref, PASSWORD)
        assert can_bind(slapd, ref.native_id, PASSWORD)
        assert not can_bind(slapd, ref.native_id, PASSWORD + "!")
        entry = slapd.entry(ref.native_id, ["userPassword"])
        assert entry is not None
        stored = entry.get("userPassword")
        assert stored and all(PASSWORD not in v for v in stored)
        # Disabled by move: the password still reaches the account where it now is.
        connector.disable_account(ref)
        connector.set_password(ref, PASSWORD + " again")
        connector.enable_account(ref)
        assert can_bind(slapd, ref.native_id, PASSWORD + " again")
        connector.delete_account(ref)
        with pytest.raises(DataError):
            connector.set_password(ref, PASSWORD)
    finally:
        connector.close()


@pytest.fixture
def target() -> Iterator[MemoryTarget]:
    MemoryTarget.forget_all()
    yield MemoryTarget.get("first-access")
    MemoryTarget.forget_all()


def _memory(*capabilities: str) -> MemoryConnector:
    settings: dict[str, object] = {"target": "first-access"}
    if capabilities:
        settings["capabilities"] = ["create_account", *capabilities]
    built = registry.build("memory", settings, {})
    assert isinstance(built, MemoryConnector)
    return built


def test_memory_sets_passwords_by_default(target: MemoryTarget) -> None:
    connector = _memory()
    assert first_access_method(connector) == CAN_SET_PASSWORD
    ref = connector.create_account(AccountSpec(username="jsmith"))
    connector.set_password(ref, PASSWORD)
    assert target.check_password("JSmith", PASSWORD)
    assert not target.check_password("jsmith", "other")
    with pytest.raises(NotSupported):
        connector.issue_temporary_access_pass(ref, lifetime_minutes=60, usable_once=True)


def test_memory_emails_and_passes_when_declared(target: MemoryTarget) -> None:
    emailing = _memory(CAN_ACTIVATION_EMAIL)
    assert first_access_method(emailing) == CAN_ACTIVATION_EMAIL
    ref = emailing.create_account(AccountSpec(username="jsmith",
                                              attributes={"mail": "j@example.com"}))
    emailing.send_activation_email(ref, lifespan_seconds=60)
    assert target.activation_emails == [{"native_id": ref.native_id, "email": "j@example.com",
                                         "actions": ["UPDATE_PASSWORD"],
                                         "lifespan_seconds": 60}]
    nomail = emailing.create_account(AccountSpec(username="nomail"))
    with pytest.raises(DataError, match="no email"):
        emailing.send_activation_email(nomail, lifespan_seconds=60)
    passing = _memory(CAN_TEMPORARY_ACCESS)
    assert first_access_method(passing) == CAN_TEMPORARY_ACCESS
    tap = passing.issue_temporary_access_pass(ref, lifetime_minutes=60, usable_once=True)
    assert target.access_passes[ref.native_id] == tap
    assert first_access_method(_memory("grant")) is None
