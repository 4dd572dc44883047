"""The embedded demo's directory: idgov serve runs slapd for the demo's LDAP application.

When slapd is installed, an approved change to the demo's "Corporate Directory" lands as a
real entry and group membership (read back with ldapsearch); the data survives a restart.
Without an application that asks for it, nothing runs.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from sqlalchemy import select, update

from idgov.applications.crypto import CredentialCipher
from idgov.assignments import service as assignments
from idgov.clock import FixedClock
from idgov.config import Settings
from idgov.db.session import unit_of_work
from idgov.models import Application, Entitlement, Identity, ProvisioningOperation
from idgov.provisioning.engine import run_until_idle
from idgov.runtime import open_runtime
from idgov.setup.demo import load_demo
from idgov.setup.demo_data import LDAP_BASE
from idgov.setup.directory import available, demo_directory, free_port
from idgov.setup.init import run_init
from idgov.types import Actor
from tests import databases
from tests.conftest import START


@pytest.fixture
def demo_settings(tmp_path: Path) -> Settings:
    settings = Settings(var_dir=tmp_path / "var")
    run_init(settings)
    return settings


def test_without_an_embedded_directory_application_nothing_runs(
        demo_settings: Settings) -> None:
    with demo_directory(demo_settings) as directory:
        assert directory is None


def test_an_approved_change_lands_in_the_demo_directory_and_survives_a_restart(
        demo_settings: Settings) -> None:
    if not available():
        databases.missing("slapd")
    clock = FixedClock(START)
    runtime = open_runtime(demo_settings, clock=clock)
    try:
        with unit_of_work(runtime.session_factory) as session:
            load_demo(session, clock=clock,
                      cipher=CredentialCipher.from_file(demo_settings.secret_key_path))
            ldap = session.scalars(select(Application)
                                   .where(Application.connector_kind == "ldap")).one()
            port = free_port()
            ldap.settings = {**ldap.settings, "url": f"ldap://127.0.0.1:{port}"}
            # The demo's own access is left out: only this test's change is run.
            session.execute(update(ProvisioningOperation).values(state="cancelled"))
            vpn = session.scalars(select(Entitlement).where(
                Entitlement.application_id == ldap.id, Entitlement.name == "VPN-Users")).one()
            newcomer = Identity(employee_id="E-NEW-1", given_name="Zoë", family_name="O'Brien",
                                display_name="Zoë O'Brien", email="zoe.obrien@example.com")
            session.add(newcomer)
            session.flush()
            assignments.grant(session, identity_id=newcomer.id, entitlement_id=vpn.id,
                              source="admin", reason="VPN for the demo", valid_from=None,
                              valid_until=None, actor=Actor.system("test"), clock=clock)
            ldap_groups = len(session.scalars(select(Entitlement.id).where(
                Entitlement.application_id == ldap.id)).all())
            newcomer_id = newcomer.id

        with demo_directory(demo_settings) as directory:
            assert directory is not None and directory.port == port
            groups = directory.ldapsearch(f"ou=groups,{LDAP_BASE}", "(objectClass=groupOfNames)",
                                          ["cn"], scope="one")
            assert len(groups) == ldap_groups
            stats = run_until_idle(runtime.session_factory, settings=demo_settings, clock=clock)
            assert stats.failed == 0
            [entry] = directory.ldapsearch(f"ou=people,{LDAP_BASE}", "(uid=zobrien)",
                                           ["uid", "employeeNumber"])
            vpn_group = directory.entry(f"cn=VPN-Users,ou=groups,{LDAP_BASE}", ["member"])
            assert vpn_group is not None and entry.dn in vpn_group.get("member")

        with demo_directory(demo_settings) as again:
            assert again is not None
            assert [e.dn for e in again.ldapsearch(f"ou=people,{LDAP_BASE}",
                                                   "(uid=zobrien)")] == [entry.dn]
        with unit_of_work(runtime.session_factory) as session:
            states = set(session.scalars(select(ProvisioningOperation.state).where(
                ProvisioningOperation.identity_id == uuid.UUID(str(newcomer_id)))))
            assert states == {"succeeded"}
    finally:
        runtime.close()
