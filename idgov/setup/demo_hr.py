"""The demo's HR side: a CSV source with an HR system's column names and the birthright
rules of the demo catalog, so that ``examples/hr/new-hires.csv`` can be imported at once:

    idgov hr import examples/hr/new-hires.csv --source "HR system" --mode delta
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from idgov.audit.service import record, snapshot
from idgov.clock import Clock
from idgov.models.catalog import Role
from idgov.models.hr import BirthrightRule, HrSource
from idgov.setup.demo_data import LOCATIONS
from idgov.types import Actor

SOURCE = "HR system"
MAPPING = {
    "employee_id": "Employee Number", "previous_employee_id": "Previous Employee Number",
    "given_name": "First Name", "family_name": "Last Name", "email": "Work Email",
    "manager_employee_id": "Manager Employee Number", "department": "Department",
    "location": "Location", "job_code": "Job Code", "job_title": "Job Title",
    "cost_center": "Cost Center", "employment_type": "Worker Type",
    "hire_date": "Hire Date", "termination_date": "Termination Date",
}
# (name, role, condition)
RULES: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("Every worker", "Employee",
     {"attribute": "employment_type", "op": "in", "value": ["employee", "contractor"]}),
    ("Finance function", "Finance Base", {"attribute": "department", "op": "eq",
                                          "value": "Finance"}),
    ("Engineering function", "Engineering Base", {"attribute": "department", "op": "eq",
                                                  "value": "Engineering"}),
)


def load_hr(session: Session, *, actor: Actor, clock: Clock, created: dict[str, int]) -> None:
    """Create the HR source and the birthright rules when missing (counted in ``created``)."""
    now = clock.now()
    if session.scalar(select(HrSource.id).where(HrSource.name == SOURCE)) is None:
        source = HrSource(name=SOURCE, kind="csv", column_mapping=MAPPING,
                          description="The demo's HR export (examples/hr/new-hires.csv)",
                          default_mode="snapshot", location_time_zones={
                              code: loc.time_zone for code, loc in LOCATIONS.items()},
                          created_at=now, updated_at=now)
        session.add(source)
        session.flush()
        record(session, actor=actor, action="hr_source.create", object_type="hr_source",
               object_id=source.id, clock=clock, after=snapshot(source))
        created["hr_source"] = created.get("hr_source", 0) + 1
    roles = {name: role_id for name, role_id in session.execute(select(Role.name, Role.id))}
    existing = set(session.scalars(select(BirthrightRule.name)))
    for name, role, condition in RULES:
        if name in existing or role not in roles:
            continue
        rule = BirthrightRule(name=name, condition=condition, role_id=roles[role],
                              description=f"{role} for every matching worker",
                              created_at=now, updated_at=now)
        session.add(rule)
        session.flush()
        record(session, actor=actor, action="birthright_rule.create",
               object_type="birthright_rule", object_id=rule.id, clock=clock,
               after=snapshot(rule))
        created["birthright_rule"] = created.get("birthright_rule", 0) + 1
