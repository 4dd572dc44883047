"""Birthright fixtures: a small organisation with HR attributes, org groups, a catalog whose
roles reach an application (so grants record provisioning operations)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta

import pytest
from sqlalchemy.orm import Session, sessionmaker

from idgov.db.session import unit_of_work
from idgov.models import (
    Application,
    Entitlement,
    Group,
    GroupMember,
    HrSource,
    Identity,
    Role,
    RoleEntitlement,
)
from tests.catalog.factories import new_identity
from tests.conftest import START

GRACE = timedelta(days=7)


@dataclass(frozen=True)
class Org:
    """sales1, sales2 (Sales, London), eng1 (Engineering, Paris), contractor (Sales,
    contractor), leaver (Sales, terminated); eng1 is in the org group "Platform Team" and the
    team group "Oncall"; sales1 has attributes {"clearance": "secret"}. Roles "Sales Base"
    and "Engineering Base" each include one entitlement of the LDAP application."""

    source: uuid.UUID
    sales1: uuid.UUID
    sales2: uuid.UUID
    eng1: uuid.UUID
    contractor: uuid.UUID
    leaver: uuid.UUID
    sales_role: uuid.UUID
    eng_role: uuid.UUID
    sales_ent: uuid.UUID
    eng_ent: uuid.UUID
    vpn: uuid.UUID
    capped: uuid.UUID


def person(session: Session, employee_id: str, *, department: str | None,
           location: str | None = "London", employment_type: str = "employee",
           state: str = "active", source: HrSource | None = None,
           attributes: dict[str, str] | None = None) -> Identity:
    return new_identity(session, employee_id, state=state, department=department,
                        location=location, employment_type=employment_type,
                        hr_source_id=source.id if source else None, attributes=attributes or {})


@pytest.fixture
def org(session_factory: sessionmaker[Session]) -> Org:
    with unit_of_work(session_factory) as session:
        source = HrSource(name="workday", kind="csv", column_mapping={},
                          mover_grace_days=GRACE.days)
        session.add(source)
        session.flush()
        sales1 = person(session, "E001", department="Sales", source=source,
                        attributes={"clearance": "secret"})
        sales2 = person(session, "E002", department="Sales", source=source)
        eng1 = person(session, "E003", department="Engineering", location="Paris",
                      source=source)
        contractor = person(session, "C001", department="Sales", employment_type="contractor",
                            source=source)
        leaver = person(session, "E009", department="Sales", state="terminated", source=source)
        platform = Group(name="Platform Team", kind="organisation", external_id="g-1")
        oncall = Group(name="Oncall", kind="team")
        session.add_all([platform, oncall])
        session.flush()
        session.add_all([GroupMember(group_id=platform.id, identity_id=eng1.id),
                         GroupMember(group_id=oncall.id, identity_id=eng1.id)])
        app = Application(name="Directory", connector_kind="ldap", settings={})
        session.add(app)
        session.flush()
        sales_ent = Entitlement(application_id=app.id, native_id="cn=sales", name="Sales-Share")
        eng_ent = Entitlement(application_id=app.id, native_id="cn=eng", name="Git-Users")
        vpn = Entitlement(application_id=app.id, native_id="cn=vpn", name="VPN-Users")
        capped = Entitlement(application_id=app.id, native_id="cn=lab", name="Lab-Access",
                             max_duration_days=90)
        sales_role = Role(name="Sales Base", kind="business")
        eng_role = Role(name="Engineering Base", kind="business")
        session.add_all([sales_ent, eng_ent, vpn, capped, sales_role, eng_role])
        session.flush()
        earlier = START - timedelta(days=30)
        session.add_all([
            RoleEntitlement(role_id=sales_role.id, entitlement_id=sales_ent.id,
                            valid_from=earlier),
            RoleEntitlement(role_id=eng_role.id, entitlement_id=eng_ent.id, valid_from=earlier),
        ])
        session.flush()
        return Org(source=source.id, sales1=sales1.id, sales2=sales2.id, eng1=eng1.id,
                   contractor=contractor.id, leaver=leaver.id, sales_role=sales_role.id,
                   eng_role=eng_role.id, sales_ent=sales_ent.id, eng_ent=eng_ent.id,
                   vpn=vpn.id, capped=capped.id)
