"""The demo's people, generated deterministically: the same seed gives the same organisation.

CEO -> one VP per department -> two directors -> two managers each -> staff. Pure: no
database, no clock; dates are day offsets from the day the demo is loaded.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field, replace
from typing import Any

from idgov.setup.demo_data import DEPARTMENTS, DOMAIN, FAMILY_NAMES, GIVEN_NAMES, SEED, Department


@dataclass(frozen=True)
class GrantPlan:
    """One assignment to make: a role or an entitlement, from a source, with a reason."""

    kind: str  # "role" or "entitlement"
    name: str
    source: str  # "birthright" or "admin"
    reason: str
    start_days: int | None = None  # offset from load time; None: at load time
    end_days: int | None = None


@dataclass(frozen=True)
class PersonPlan:
    employee_id: str
    given_name: str
    family_name: str
    email: str
    manager: str | None  # the manager's employee id
    department: str
    location: str  # a key of LOCATIONS
    job_code: str
    job_title: str
    cost_center: str
    level: str  # ceo, vp, director, manager, staff
    hire_days: int
    employment_type: str = "employee"
    lifecycle_state: str = "active"
    termination_days: int | None = None
    grants: tuple[GrantPlan, ...] = field(default=())


@dataclass(frozen=True)
class Organisation:
    people: tuple[PersonPlan, ...]

    def by_job(self, job_code: str) -> list[PersonPlan]:
        return [p for p in self.people if p.job_code == job_code]

    def leaders(self, department: str, *levels: str) -> list[PersonPlan]:
        return [p for p in self.people if p.department == department and p.level in levels]


class _Names:
    """Unique given/family name pairs and e-mail addresses from a seeded generator."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.used: set[tuple[str, str]] = set()

    def next(self) -> tuple[str, str, str]:
        while True:
            pair = (self.rng.choice(GIVEN_NAMES), self.rng.choice(FAMILY_NAMES))
            if pair not in self.used:
                self.used.add(pair)
                local = re.sub(r"[^a-z.]", "", f"{pair[0]}.{pair[1]}".lower())
                return pair[0], pair[1], f"{local}@{DOMAIN}"


class _Builder:
    def __init__(self) -> None:
        self.rng = random.Random(SEED)
        self.names = _Names(self.rng)
        self.next_id = 100001
        self.people: list[PersonPlan] = []

    def add(self, *, manager: PersonPlan | None, department: str, location: str,
            job_code: str, job_title: str, cost_center: str, level: str,
            grants: list[GrantPlan]) -> PersonPlan:
        given, family, email = self.names.next()
        person = PersonPlan(
            employee_id=f"E{self.next_id}", given_name=given, family_name=family, email=email,
            manager=manager.employee_id if manager else None, department=department,
            location=location, job_code=job_code, job_title=job_title, cost_center=cost_center,
            level=level, hire_days=-self.rng.randint(60, 4000), grants=tuple(grants),
        )
        self.next_id += 1
        self.people.append(person)
        return person


def _birthright(reason: str, *, roles: tuple[str | None, ...] = (),
                entitlements: tuple[str, ...] = ()) -> list[GrantPlan]:
    grants = [GrantPlan("role", "Employee", "birthright", "birthright: every employee")]
    grants += [GrantPlan("role", r, "birthright", reason) for r in roles if r]
    grants += [GrantPlan("entitlement", e, "birthright", reason) for e in entitlements]
    return grants


_TITLES = {"vp": "Vice President, {}", "director": "Director, {}", "manager": "{} Manager"}
_CODES = {"vp": "VP", "director": "DIR", "manager": "MGR"}


def _department(b: _Builder, dept: Department, ceo: PersonPlan) -> None:
    def leader(level: str, manager: PersonPlan, location: str) -> PersonPlan:
        return b.add(manager=manager, department=dept.name, location=location,
                     job_code=f"{dept.code}-{_CODES[level]}",
                     job_title=_TITLES[level].format(dept.name), cost_center=dept.cost_center,
                     level=level,
                     grants=_birthright(f"birthright: {dept.name} leadership",
                                        roles=(dept.leadership_role,),
                                        entitlements=dept.leadership_entitlements))

    home = dept.locations[0]
    vp = leader("vp", ceo, home)
    managers: list[PersonPlan] = []
    for d in range(2):
        director = leader("director", vp, dept.locations[d % len(dept.locations)])
        for m in range(2):
            managers.append(leader("manager", director,
                                   dept.locations[(2 * d + m) % len(dept.locations)]))
    jobs = [job for job in dept.jobs for _ in range(job.weight)]
    for i in range(dept.staff):
        manager = managers[i % len(managers)]
        job = jobs[i % len(jobs)]
        location = (manager.location if b.rng.random() < 0.8
                    else b.rng.choice(dept.locations))
        b.add(manager=manager, department=dept.name, location=location, job_code=job.code,
              job_title=job.title, cost_center=dept.cost_center, level="staff",
              grants=_birthright(f"birthright: job code {job.code}", roles=(job.role,),
                                 entitlements=job.entitlements))


def _with(people: list[PersonPlan], person: PersonPlan, **changes: Any) -> None:
    people[people.index(person)] = replace(person, **changes)


def _extra(person: PersonPlan, kind: str, name: str, reason: str,
           end_days: int | None = None) -> tuple[GrantPlan, ...]:
    return (*person.grants, GrantPlan(kind, name, "admin", reason, end_days=end_days))


def plan_organisation() -> Organisation:
    """The whole demo organisation, identical on every call."""
    b = _Builder()
    ceo = b.add(manager=None, department="Executive", location="LON", job_code="EXE-CEO",
                job_title="Chief Executive Officer", cost_center="CC-1000", level="ceo",
                grants=_birthright("birthright: executive"))
    for dept in DEPARTMENTS:
        _department(b, dept, ceo)
    people = b.people

    # Contractors: the last staff of Engineering and IT, on a six-month contract.
    contractors = ([p for p in people if p.department == "Engineering" and p.level == "staff"][-4:]
                   + [p for p in people if p.department == "IT" and p.level == "staff"][-2:])
    for n, person in enumerate(contractors, start=1):
        grants = tuple(replace(g, end_days=180, reason=g.reason + " (contract SOW-2026-"
                               f"{n:03d})") for g in person.grants)
        _with(people, person, employee_id=f"C{200000 + n}", employment_type="contractor",
              hire_days=-30 * n, grants=grants)

    # Prehires: three sales staff starting in the coming weeks; access starts with them.
    sales = [p for p in people if p.department == "Sales" and p.level == "staff"][-3:]
    for n, person in enumerate(sales, start=2):
        start = 7 * n
        _with(people, person, lifecycle_state="prehire", hire_days=start,
              grants=tuple(replace(g, start_days=start) for g in person.grants))

    # One leaver: their access was granted at hire and is revoked when the demo loads.
    leaver = [p for p in people if p.department == "Operations" and p.level == "staff"][4]
    _with(people, leaver, lifecycle_state="terminated", termination_days=-1,
          grants=tuple(replace(g, start_days=leaver.hire_days) for g in leaver.grants))

    org = Organisation(tuple(people))
    # Conflicting combinations (SoD violations to find) and a few privileged direct grants.
    specials = [
        (org.by_job("FIN-AP")[0], "role", "Accounts Payable Manager",
         "Covering vendor payment approvals during the AP manager's parental leave", None),
        (org.by_job("FIN-GL")[0], "entitlement", "GL-Journal-Approve",
         "Month-end close cover for the financial controller", 30),
        (org.by_job("ENG-SRE")[0], "role", "Change Manager",
         "Acting chair of the change advisory board", None),
        (org.by_job("IT-IAM")[0], "entitlement", "Audit-Log-Admin",
         "SIEM migration project", None),
        (org.by_job("ENG-SRE")[1], "entitlement", "AWS-Prod-Admin",
         "On-call production administration", None),
        (org.leaders("Engineering", "vp")[0], "entitlement", "GitHub-Org-Owner",
         "Organisation owner for billing and security settings", None),
        (org.by_job("SLS-OPS")[0], "entitlement", "Salesforce-Admin",
         "Salesforce release management", None),
    ]
    for person, kind, name, reason, end_days in specials:
        current = next(p for p in people if p.employee_id == person.employee_id)
        _with(people, current, grants=_extra(current, kind, name, reason, end_days))
    return Organisation(tuple(people))
