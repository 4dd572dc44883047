"""`idgov demo`: a realistic organisation, loaded once, audited, on both backends."""

from __future__ import annotations

import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from idgov.assignments.repository import in_force
from idgov.audit.service import install_sealer
from idgov.audit.signing import generate_signer
from idgov.cli import app
from idgov.clock import FixedClock
from idgov.config import Settings
from idgov.db.session import make_engine, make_session_factory, unit_of_work
from idgov.models import (
    Application,
    Assignment,
    AuditEvent,
    Base,
    Entitlement,
    Group,
    GroupMember,
    Identity,
    Role,
    RoleEntitlement,
    RoleInclusion,
    ServiceRoleGrant,
    SodRule,
    SodRuleItem,
)
from idgov.setup.demo import load_demo
from tests import databases
from tests.conftest import START
from tests.setup.conftest import RunCli


def _row_counts(url: str) -> dict[str, int]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return {table.name: conn.scalar(select(func.count()).select_from(table)) or 0
                    for table in Base.metadata.sorted_tables}
    finally:
        engine.dispose()


@pytest.mark.slow
def test_demo_twice_loads_once_and_the_second_run_writes_nothing(
        var_dir: Path, run_cli: RunCli, db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IDGOV_DATABASE_URL", db_url)
    run_cli("init")
    first = run_cli("demo")
    after_first = _row_counts(Settings().resolved_database_url)
    second = run_cli("demo")

    assert _row_counts(Settings().resolved_database_url) == after_first
    assert "nothing changed" in second.output
    assert "identity" in first.output
    assert after_first["identities"] == 250
    assert after_first["applications"] == 3
    assert after_first["entitlements"] == 42
    assert after_first["roles"] == 16
    assert after_first["sod_rules"] == 5
    assert after_first["request_types"] == 3
    assert after_first["assignments"] > 400


def test_demo_without_init_says_to_run_init(var_dir: Path) -> None:
    result = CliRunner().invoke(app, ["demo"])
    assert result.exit_code == 1
    assert "idgov init" in result.output


@dataclass(frozen=True)
class Demo:
    """A database of its own with the demo loaded once, shared by the read-only tests below."""

    session_factory: sessionmaker[Session]
    clock: FixedClock
    created: dict[str, int]


@pytest.fixture(scope="module", params=databases.backends())
def demo(request: pytest.FixtureRequest,
         tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    scratch: databases.PostgresScratch | None = None
    if request.param == "sqlite":
        folder = tmp_path_factory.mktemp("demo")
        url = databases.SqliteTemplate(folder).copy_to(folder)
    else:
        base = databases.pg_base_url()
        if base is None:
            databases.missing("PostgreSQL")
            return
        scratch = databases.PostgresScratch(base)
        url = scratch.url
    engine = databases.make_test_engine(url)
    factory = make_session_factory(engine)
    install_sealer(factory, generate_signer())
    clock = FixedClock(START)
    with unit_of_work(factory) as session:
        created = load_demo(session, clock=clock)
    yield Demo(factory, clock, created)
    engine.dispose()
    if scratch is not None:
        scratch.drop()


@pytest.mark.slow
def test_every_demo_change_is_audited_by_the_demo_actor(
        demo: Demo) -> None:
    session_factory = demo.session_factory
    with session_factory() as session:
        events = session.execute(select(AuditEvent.action, AuditEvent.actor_type,
                                        AuditEvent.actor_name, AuditEvent.hash)).all()
        assignments = session.scalar(select(func.count()).select_from(Assignment))
    assert {(e.actor_type, e.actor_name) for e in events} == {("system", "demo")}
    assert all(e.hash is not None for e in events)
    actions = Counter(e.action for e in events)
    assert actions["identity.create"] == 250
    assert actions["assignment.grant"] == assignments == demo.created["assignment"]
    assert actions["sod_rule.create"] == 5
    assert actions["application.create"] == 3
    assert actions["service_role.grant"] == 2


def test_the_demo_has_an_administrator_and_an_auditor_person(demo: Demo) -> None:
    with demo.session_factory() as session:
        held = set(session.execute(
            select(ServiceRoleGrant.role, Identity.department, Identity.job_code)
            .join(Identity, Identity.id == ServiceRoleGrant.identity_id)))
    assert held == {("administrator", "IT", "IT-IAM"), ("auditor", "Finance", "FIN-DIR")}


@pytest.mark.slow
def test_demo_hierarchy_departments_and_locations_are_realistic(
        demo: Demo) -> None:
    session_factory = demo.session_factory
    with session_factory() as session:
        people = session.scalars(select(Identity)).all()
    by_id = {p.id: p for p in people}
    roots = [p for p in people if p.manager_id is None]
    assert [r.job_title for r in roots] == ["Chief Executive Officer"]
    for person in people:  # everyone reaches the CEO
        seen, current = 0, person
        while current.manager_id is not None and seen < 10:
            current, seen = by_id[current.manager_id], seen + 1
        assert current is roots[0]
    departments = {p.department for p in people}
    assert {"Finance", "Procurement", "Engineering", "Sales", "HR", "IT", "Legal",
            "Operations"} <= departments
    for zone in {p.time_zone for p in people}:
        assert zone is not None
        ZoneInfo(zone)
    assert {p.location for p in people} >= {"London", "New York", "Berlin", "Singapore",
                                            "Austin"}
    assert len({p.employee_id for p in people}) == len({p.email for p in people}) == 250
    assert all(p.job_code and p.cost_center for p in people)
    states = Counter(p.lifecycle_state for p in people)
    assert states["terminated"] == 1 and states["prehire"] == 3
    assert sum(p.employment_type == "contractor" for p in people) >= 3


@pytest.mark.slow
def test_demo_leaver_keeps_revoked_history_and_holds_nothing(
        demo: Demo) -> None:
    session_factory, clock = demo.session_factory, demo.clock
    with session_factory() as session:
        leaver = session.scalars(select(Identity)
                                 .where(Identity.lifecycle_state == "terminated")).one()
        rows = session.scalars(select(Assignment)
                               .where(Assignment.identity_id == leaver.id)).all()
        held = session.scalars(select(Assignment).where(Assignment.identity_id == leaver.id,
                                                        in_force(clock.now()))).all()
    assert rows and held == []
    assert all(r.revoked_at is not None and r.revoke_reason for r in rows)
    assert leaver.termination_date is not None


@pytest.mark.slow
def test_demo_catalog_links_groups_and_applications(
        demo: Demo) -> None:
    session_factory, clock = demo.session_factory, demo.clock
    with session_factory() as session:
        apps = {a.connector_kind: a for a in session.scalars(select(Application))}
        clerk = session.scalars(select(Role).where(Role.name == "Accounts Payable Clerk")).one()
        finance_base = session.scalars(select(Role).where(Role.name == "Finance Base")).one()
        inclusion = session.scalars(select(RoleInclusion)
                                    .where(RoleInclusion.parent_role_id == clerk.id)).one()
        privileged = session.scalars(select(Entitlement)
                                     .where(Entitlement.privileged.is_(True))).all()
        regulated = session.scalar(select(func.count()).select_from(Entitlement)
                                   .where(Entitlement.data_classification != "none"))
        groups = {g.kind for g in session.scalars(select(Group))}
        members = session.scalar(select(func.count()).select_from(GroupMember))
        links = session.scalars(select(RoleEntitlement)).all()
    assert set(apps) == {"ldap", "entra", "keycloak"}
    assert apps["ldap"].settings["base_dn"] == "dc=northwind,dc=example,dc=com"
    assert apps["entra"].settings["tenant_id"]
    assert apps["keycloak"].settings["realm"] == "engineering"
    assert all(a.resolution_group_id and a.owner_id for a in apps.values())
    assert inclusion.child_role_id == finance_base.id
    assert inclusion.valid_from == clock.now()
    assert all(link.valid_from == clock.now() and link.valid_until is None for link in links)
    assert {e.name for e in privileged} >= {"AWS-Prod-Admin", "GitHub-Org-Owner",
                                           "Payroll-Admin"}
    assert regulated and regulated >= 15
    assert groups == {"team", "resolution"} and members and members > 20


def _effective_entitlements(session: Session,
                            at: datetime) -> dict[uuid.UUID, set[uuid.UUID]]:
    """Identity -> entitlements held directly or through roles, transitively (a test oracle)."""
    children: dict[uuid.UUID, set[uuid.UUID]] = defaultdict(set)
    for link in session.scalars(select(RoleInclusion)):
        children[link.parent_role_id].add(link.child_role_id)
    ents: dict[uuid.UUID, set[uuid.UUID]] = defaultdict(set)
    for grant in session.scalars(select(RoleEntitlement)):
        ents[grant.role_id].add(grant.entitlement_id)

    def expand(role_id: uuid.UUID) -> set[uuid.UUID]:
        found = set(ents[role_id])
        for child in children[role_id]:
            found |= expand(child)
        return found

    held: dict[uuid.UUID, set[uuid.UUID]] = defaultdict(set)
    for row in session.scalars(select(Assignment).where(in_force(at))):
        if row.role_id is not None:
            held[row.identity_id] |= expand(row.role_id)
        elif row.entitlement_id is not None:
            held[row.identity_id].add(row.entitlement_id)
    return held


@pytest.mark.slow
def test_demo_has_a_few_sod_conflicts_and_most_people_hold_birthright_access(
        demo: Demo) -> None:
    session_factory, clock = demo.session_factory, demo.clock
    with session_factory() as session:
        held = _effective_entitlements(session, clock.now())
        sides: dict[uuid.UUID, dict[str, set[uuid.UUID]]] = defaultdict(
            lambda: {"a": set(), "b": set()})
        for item in session.scalars(select(SodRuleItem)):
            assert item.entitlement_id is not None
            sides[item.rule_id][item.side].add(item.entitlement_id)
        rule_names = {r.id: r.name for r in session.scalars(select(SodRule))}
        sources = Counter(session.scalars(select(Assignment.source)))
    violators = {(identity_id, rule_names[rule_id])
                 for identity_id, ents in held.items()
                 for rule_id, side in sides.items()
                 if ents & side["a"] and ents & side["b"]}
    assert 3 <= len({v[0] for v in violators}) <= 5
    assert {v[1] for v in violators} >= {"Create vendor vs approve vendor payment",
                                         "Post journal vs approve journal"}
    assert len(held) >= 240  # everyone but prehires and the leaver holds access now
    assert sources["birthright"] > sources["admin"] > 0


@pytest.mark.slow
def test_demo_loaded_again_a_month_later_changes_nothing(demo: Demo) -> None:
    url = demo.session_factory.kw["bind"].url.render_as_string(hide_password=False)
    before = _row_counts(url)
    later = FixedClock(demo.clock.now() + timedelta(days=30))
    with unit_of_work(demo.session_factory) as session:
        assert load_demo(session, clock=later) == {}
    assert _row_counts(url) == before


def test_demo_request_types_take_requests(demo: Demo) -> None:
    """The three demo request types exist, and each form accepts what the demo README asks
    and refuses a form without its required fields."""
    from idgov.models import RequestType
    from idgov.requests.forms import form_errors

    with demo.session_factory() as session:
        types = {t.key: t for t in session.scalars(select(RequestType))}
    assert sorted(types) == ["application-access", "privileged-access",
                             "temporary-elevated-access"]
    good = {"justification": "Month-end close needs the ledger",
            "business_need": "Month-end close of the books",
            "ticket_reference": "CHG-10423", "duration_hours": 8}
    for key, rtype in types.items():
        allowed = set(rtype.form_schema["properties"])
        assert list(form_errors(rtype.form_schema, {k: v for k, v in good.items()
                                                    if k in allowed})) == [], key
        missing = [e.field for e in form_errors(rtype.form_schema, {})]
        assert "form_data.justification" in missing, key
    assert types["privileged-access"].dual_control_group_id is not None
    assert types["temporary-elevated-access"].duration_required
