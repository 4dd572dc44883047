"""Every state change writes its audit events: who, what, which object, before and after.

One scenario calls every mutating route of the API (and fails when a route is added without
being called here); the state-changing CLI commands are run against a real database too.
Secrets handed to the service never reach the trail, and the chain verifies afterwards.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from idgov.audit.signing import Signer, Verifier, load_verifier
from idgov.audit.verify import verify_chain
from idgov.cli import app as cli_app
from idgov.clock import FixedClock
from idgov.db.session import make_engine, make_session_factory
from idgov.models import (
    ApiToken,
    Application,
    Assignment,
    AuditEvent,
    Entitlement,
    Group,
    GroupMember,
    Identity,
    Role,
    SodRule,
)
from tests.audit_scenario import AuditedApi, event_text, mutating_routes, run_scenario
from tests.conftest import PersonHeaders


@pytest.fixture
def audited(client: TestClient, admin_headers: dict[str, str], people: PersonHeaders,
            session_factory: sessionmaker[Session], clock: FixedClock) -> AuditedApi:
    return AuditedApi(client=client, headers=admin_headers, factory=session_factory,
                      clock=clock)


def _all_events(factory: sessionmaker[Session]) -> list[AuditEvent]:
    with factory() as session:
        return list(session.scalars(select(AuditEvent).order_by(AuditEvent.seq)))


def _secrets_at_rest(factory: sessionmaker[Session]) -> list[str]:
    """Encrypted credentials and token hashes as stored: they stay out of the trail too."""
    with factory() as session:
        sealed = [c.decode() if isinstance(c, bytes) else str(c) for c in session.scalars(
            select(Application.credentials_encrypted)
            .where(Application.credentials_encrypted.is_not(None)))]
        return sealed + list(session.scalars(select(ApiToken.secret_hash)))


def test_every_mutating_route_writes_its_audit_events_and_no_secret(
        app: FastAPI, audited: AuditedApi, admin_headers: dict[str, str],
        session_factory: sessionmaker[Session], engine: Engine, signer: Signer,
        clock: FixedClock) -> None:
    secrets = run_scenario(audited)

    served = mutating_routes(app)
    assert sorted(served - audited.exercised) == [], "mutating routes the scenario never calls"
    assert sorted(audited.exercised - served) == [], "scenario calls routes the app does not serve"

    admin_token = admin_headers["Authorization"].removeprefix("Bearer ")
    secrets.add(admin_token, admin_token.split("_", 2)[-1])
    forbidden = secrets.values + _secrets_at_rest(session_factory)
    events = _all_events(session_factory)
    leaks = [(e.seq, e.action) for e in events for s in forbidden if s in event_text(e)]
    assert leaks == [], "secrets in the audit trail"

    with engine.connect() as conn:
        result = verify_chain(conn, Verifier(keys={signer.key_id: signer.public_key}),
                              now=clock.now())
    assert result.ok, [p.describe() for p in result.problems]
    assert (result.events, result.last_seq) == (len(events), events[-1].seq)


def test_a_mutating_route_missing_from_the_scenario_is_noticed(app: FastAPI) -> None:
    def probe(probe_id: str) -> None:
        """A mutating route nobody audits."""

    app.add_api_route("/audit-coverage-probe/{probe_id}", probe, methods=["PUT"])
    assert ("PUT", "/audit-coverage-probe/{probe_id}") in mutating_routes(app)
    assert ("GET", "/identities") not in mutating_routes(app)
    assert ("POST", "/identities") in mutating_routes(app)


# The CLI ------------------------------------------------------------------------------------


@pytest.fixture
def cli(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Runs ``idgov ...`` on a fresh var folder and the test's database (either backend)."""
    monkeypatch.setenv("IDGOV_VAR_DIR", str(tmp_path / "cli-var"))
    monkeypatch.setenv("IDGOV_DATABASE_URL", db_url)
    runner = CliRunner()

    def invoke(*args: str) -> Any:
        result = runner.invoke(cli_app, list(args))
        assert result.exit_code == 0, f"idgov {' '.join(args)}: {result.output}"
        return result
    return invoke


def _events_since(factory: sessionmaker[Session], seq: int) -> list[AuditEvent]:
    with factory() as session:
        return list(session.scalars(select(AuditEvent).where(AuditEvent.seq > seq)
                                    .order_by(AuditEvent.seq)))


def _last_seq(events: list[AuditEvent], before: int) -> int:
    return (events[-1].seq or before) if events else before


def test_state_changing_cli_commands_write_their_audit_events(
        cli: Any, db_url: str, tmp_path: Path) -> None:
    var = tmp_path / "cli-var"
    cli("init")
    engine = make_engine(db_url)
    factory = make_session_factory(engine)
    try:
        events = _events_since(factory, 0)
        assert {(e.actor_type, e.actor_name, e.action) for e in events} == {
            ("system", "init", "service_principal.create"), ("system", "init", "api_token.create")}
        assert all(e.after and e.before is None for e in events)
        admin_token = (var / "admin-token").read_text().strip()
        seq = _last_seq(events, 0)

        cli("demo")
        demo_events = _events_since(factory, seq)
        assert demo_events and {(e.actor_type, e.actor_name) for e in demo_events} == {
            ("system", "demo")}
        _assert_demo_objects_have_creation_events(factory, demo_events)
        seq = _last_seq(demo_events, seq)

        token = cli("tokens", "create", "--name", "siem pull", "--role", "auditor").stdout
        token = token.strip().splitlines()[-1]
        created = _events_since(factory, seq)
        with factory() as session:
            row = session.scalars(select(ApiToken).where(ApiToken.name == "siem pull")).one()
        assert [(e.action, e.object_id) for e in created] == [
            ("service_principal.create", str(row.principal_id)), ("api_token.create", str(row.id))]
        assert all(e.actor_type == "system" and (e.actor_name or "").startswith("cli:")
                   for e in created)
        seq = _last_seq(created, seq)

        cli("tokens", "revoke", row.prefix)
        revoked = _events_since(factory, seq)
        assert [(e.action, e.object_id) for e in revoked] == [("api_token.revoke", str(row.id))]
        assert revoked[0].before and revoked[0].after
        assert revoked[0].before["revoked_at"] is None and revoked[0].after["revoked_at"]

        everything = _events_since(factory, 0)
        for secret in (admin_token, token, token.split("_", 2)[-1]):
            assert not [e.seq for e in everything if secret in event_text(e)]
        with engine.connect() as conn:
            result = verify_chain(conn, load_verifier(var / "audit-signing.pub"),
                                  now=everything[-1].occurred_at)
        assert result.ok, [p.describe() for p in result.problems]
        assert result.events == len(everything)
    finally:
        engine.dispose()


def _assert_demo_objects_have_creation_events(factory: sessionmaker[Session],
                                              events: list[AuditEvent]) -> None:
    """Every object the demo loaded has its creation event, every membership its own."""
    created: dict[str, set[str]] = {}
    for event in events:
        created.setdefault(event.action, set()).add(event.object_id or "")
    expected = {"identity.create": Identity.id, "group.create": Group.id,
                "application.create": Application.id, "entitlement.create": Entitlement.id,
                "role.create": Role.id, "sod_rule.create": SodRule.id,
                "assignment.grant": Assignment.id}
    with factory() as session:
        for action, id_column in expected.items():
            ids = {str(i) for i in session.scalars(select(id_column))}
            assert ids, f"the demo made nothing that needs {action}"
            assert ids <= created.get(action, set()), f"objects without their {action} event"
        members = {(str(m.group_id), str(m.identity_id))
                   for m in session.scalars(select(GroupMember))}
    audited_members = {(e.object_id, (e.after or {}).get("identity_id"))
                       for e in events if e.action == "group.member_add"}
    assert members and members <= audited_members
