"""HR feed at organisation scale: a first snapshot, the same snapshot again, a snapshot with
changes, with birthright rules evaluated and provisioning operations recorded.

    python benchmarks/hr_feed.py [--quick] [--workers N] [--changes M]
        [--backend sqlite|postgresql|both] [--database-url URL] [--profile DIR]

Three CSV files are generated first (by this process; seeded, so every run reads the same
bytes), written as an HR system exports them: UTF-8 with a byte order mark, CRLF, quoted
fields where a value holds a comma, 16 columns under the HR system's own headers (the
source's column mapping names them). By default N = 100,000 workers: names drawn from
common and rare given and family names (accents, apostrophes, particles, and a long tail of
generated surnames), so common names collide and login names get suffixes (jsmith,
jsmith2, ...); unique work emails; 21 departments with their job codes and titles; 10
locations in their time zones (the source maps location to zone); a cost center per
department and location; division and legal entity as extra attributes; employees,
contractors, interns and temporary staff; a manager hierarchy under one CEO (spans of 3-12,
reports mostly in their manager's department), rows in random order; ~1% hires in the
future (prehire) and ~0.3% future-dated terminations. The changed snapshot has M = 1,000
changes (``--quick``: N = 5,000, M = 100): 50% movers (department and job code, so their
birthright access changes), 20% surname changes (display name follows), 10% leavers with a
termination date (half already past: they leave at once; half in the future: scheduled),
10% new joiners, 5% manager changes, 5% contractors converted to employees.

Then, per backend (``sqlite``: a throwaway file; ``postgresql``: a scratch database beside
``--database-url``, else ``IDGOV_BENCH_DATABASE_URL``, else 127.0.0.1:5432 when it answers;
dropped afterwards), one child process per backend: migrate, create the catalog through the
product's services (4 applications of connector kind ``memory``, 3 of them managing
accounts, so ``create_account``, ``deliver_access`` and ``grant`` operations are recorded
and no target is contacted; 30 entitlements; 22 roles including roles; 20 birthright rules
over department, location, job code and employment type; the HR source with its mapping,
zones, a 5% termination threshold and a change threshold of 2*M), then time, each in one
unit of work with a session factory that seals the audit trail as ``idgov.runtime.
open_runtime`` makes it (what ``idgov hr import`` does: ``csvfeed.parse_csv_stream`` of the
file, then ``feed.run_feed``, then the commit):

- first_load_100k_s: the first snapshot (N joiners in bulk: identities, birthright
  assignments, operations, lifecycle events, audit events);
- noop_reload_100k_s: the same file again: every row read and compared, nothing changes
  (the run must count N unchanged, else the benchmark fails);
- delta_1k_s: the changed snapshot (all N rows read; M changes applied one identity at a
  time through the usual services); the run must apply (not be held) with the expected
  counts, else the benchmark fails;
- peak_rss_mb: the child's peak resident memory (VmHWM), setup and all three runs included
  (the file generation happens in the parent and is not counted).

``--profile DIR`` writes a cProfile of each timed run to DIR (``pstats`` files). The last
line printed is one JSON object: per backend the three times, peak_rss_mb and details
(counts, operations and audit events written), plus the scale, the budgets and the machine's
load average at the start.
"""

from __future__ import annotations

import argparse
import cProfile
import csv
import json
import os
import random
import resource
import socket
import subprocess
import sys
import tempfile
import time
import unicodedata
from collections.abc import Callable, Sequence
from datetime import date, timedelta
from pathlib import Path
from typing import Any

BUDGETS = {"first_load_100k_s": 60.0, "noop_reload_100k_s": 10.0, "delta_1k_s": 10.0,
           "peak_rss_mb": 500.0}
DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
SOURCE = "Workday export"
HEADERS = ("Employee ID", "First Name", "Last Name", "Preferred Name", "Work Email",
           "Manager ID", "Department", "Location", "Job Code", "Job Title", "Cost Center",
           "Worker Type", "Hire Date", "Termination Date", "Division", "Legal Entity")
MAPPING = {"employee_id": "Employee ID", "given_name": "First Name",
           "family_name": "Last Name", "display_name": "Preferred Name",
           "email": "Work Email", "manager_employee_id": "Manager ID",
           "department": "Department", "location": "Location", "job_code": "Job Code",
           "job_title": "Job Title", "cost_center": "Cost Center",
           "employment_type": "Worker Type", "hire_date": "Hire Date",
           "termination_date": "Termination Date", "attributes.division": "Division",
           "attributes.legal_entity": "Legal Entity"}

GIVEN = (("James", 30), ("Mary", 28), ("John", 30), ("Patricia", 18), ("Robert", 24),
         ("Jennifer", 20), ("Michael", 26), ("Linda", 16), ("David", 26), ("Elizabeth", 16),
         ("Maria", 22), ("José", 10), ("Zoë", 4), ("Chloé", 6), ("François", 5),
         ("Amélie", 5), ("Søren", 3), ("Björn", 3), ("Łukasz", 3), ("Siobhán", 3),
         ("Renée", 4), ("Jürgen", 3), ("Inès", 4), ("Noémie", 3), ("Mohammed", 12),
         ("Wei", 10), ("Priya", 8), ("Aarav", 6), ("Yuki", 5), ("Olusegun", 3), ("Chidi", 3),
         ("Fatima", 8), ("Ana", 8), ("João", 6), ("Sofía", 7), ("Lucía", 5), ("Mateo", 6),
         ("Emma", 15), ("Olivia", 14), ("Noah", 14), ("Liam", 14), ("Hannah", 10),
         ("Jean-Luc", 2), ("Marie-Claire", 2), ("D'Arcy", 1), ("Seán", 3), ("Niamh", 3),
         ("Ægir", 1), ("Dagný", 1), ("Çağla", 2), ("Ngozi", 3), ("Hiroshi", 4),
         ("Anh", 4), ("Ji-woo", 3), ("Kwame", 3), ("Thandiwe", 2), ("Rafał", 2),
         ("Ștefan", 2), ("Eléonore", 2), ("Ólafur", 1), ("Sarah", 20), ("Daniel", 20),
         ("Laura", 14), ("Thomas", 16), ("Anna", 14), ("Peter", 12), ("Julia", 12))
FAMILY = (("Smith", 40), ("Johnson", 30), ("Williams", 26), ("Brown", 25), ("Jones", 24),
          ("Garcia", 20), ("García", 8), ("Miller", 18), ("Davis", 18), ("Martin", 15),
          ("Müller", 10), ("Schmidt", 8), ("O'Brien", 8), ("O'Connor", 6), ("D'Angelo", 4),
          ("N'Diaye", 3), ("Nguyen", 14), ("Wang", 14), ("Li", 14), ("Kumar", 12),
          ("Singh", 12), ("Patel", 12), ("Dubois", 6), ("Lefèvre", 4), ("Ødegaard", 2),
          ("Núñez", 4), ("Håkansson", 2), ("Wiśniewski", 3), ("Kowalczyk", 3), ("Rossi", 6),
          ("Bianchi", 4), ("Silva", 8), ("Santos", 8), ("Gonçalves", 4), ("Yamamoto", 4),
          ("Tanaka", 5), ("Kim", 10), ("Park", 8), ("Lee", 12), ("MacDonald", 4),
          ("de la Cruz", 3), ("van der Berg", 3), ("Fitzgerald", 3), ("Okafor", 3),
          ("Adeyemi", 3), ("Dvořák", 2), ("Öztürk", 3), ("Jørgensen", 2), ("Ó Súilleabháin", 1),
          ("Al-Hassan", 3), ("Le Goff", 2), ("St. John", 1), ("Nakamura", 3), ("Ivanova", 3))
SYLLABLES = ("ka", "lo", "ver", "ran", "mi", "son", "ber", "tel", "dor", "an", "ste", "vik",
             "mar", "li", "ne", "hol", "quist", "ez", "ic", "ova", "ström", "ski", "ley", "ton")
LOCATIONS = (("Paris", "Europe/Paris", 14), ("London", "Europe/London", 16),
             ("New York", "America/New_York", 18), ("Berlin", "Europe/Berlin", 8),
             ("Singapore", "Asia/Singapore", 7), ("São Paulo", "America/Sao_Paulo", 6),
             ("Bengaluru", "Asia/Kolkata", 12), ("Sydney", "Australia/Sydney", 5),
             ("Toronto", "America/Toronto", 7), ("Madrid", "Europe/Madrid", 7))
# department -> (division, weight, [(job code, title)], manager job)
DEPARTMENTS: dict[str, tuple[str, int, list[tuple[str, str]], tuple[str, str]]] = {
    "Executive": ("Corporate", 0, [("EXE-ASST", "Executive Assistant")],
                  ("EXE-VP", "Vice President")),
    "Finance": ("Corporate", 7, [("FIN-ACC", "Accountant"), ("FIN-AP", "Clerk, Accounts "
                "Payable"), ("FIN-ANL", "Financial Analyst"), ("FIN-CTL", "Controller")],
                ("FIN-MGR", "Finance Manager")),
    "Sales": ("Revenue", 14, [("SAL-REP", "Account Executive"), ("SAL-SDR", "Sales "
              "Development Rep"), ("SAL-ENG", "Sales Engineer")], ("SAL-MGR", "Sales Manager")),
    "Engineering": ("Product", 20, [("ENG-SWE", "Software Engineer"), ("ENG-SR", "Senior "
                    "Software Engineer"), ("ENG-SRE", "Site Reliability Engineer"),
                    ("ENG-QA", "QA Engineer")], ("ENG-MGR", "Engineering Manager")),
    "Product": ("Product", 5, [("PRD-PM", "Product Manager"), ("PRD-DES", "Designer, UX")],
                ("PRD-DIR", "Director of Product")),
    "Marketing": ("Revenue", 6, [("MKT-SPC", "Marketing Specialist"), ("MKT-CNT",
                  "Content Writer")], ("MKT-MGR", "Marketing Manager")),
    "Customer Support": ("Revenue", 12, [("SUP-T1", "Support Agent, Tier 1"),
                         ("SUP-T2", "Support Agent, Tier 2")], ("SUP-MGR", "Support Manager")),
    "Human Resources": ("Corporate", 3, [("HR-GEN", "HR Generalist"), ("HR-REC",
                        "Recruiter")], ("HR-MGR", "HR Manager")),
    "Legal": ("Corporate", 2, [("LEG-CNS", "Counsel"), ("LEG-PAR", "Paralegal")],
              ("LEG-GC", "General Counsel")),
    "IT": ("Corporate", 4, [("IT-ADM", "Systems Administrator"), ("IT-HD", "Help Desk "
           "Technician"), ("IT-SEC", "Security Engineer")], ("IT-MGR", "IT Manager")),
    "Operations": ("Operations", 8, [("OPS-COO", "Operations Coordinator"), ("OPS-LOG",
                   "Logistics Analyst")], ("OPS-MGR", "Operations Manager")),
    "Procurement": ("Operations", 2, [("PRC-BUY", "Buyer")], ("PRC-MGR", "Procurement Lead")),
    "Facilities": ("Operations", 2, [("FAC-TEC", "Facilities Technician")],
                   ("FAC-MGR", "Facilities Manager")),
    "Data": ("Product", 4, [("DAT-ANL", "Data Analyst"), ("DAT-SCI", "Data Scientist")],
             ("DAT-MGR", "Head of Data")),
    "Research": ("Product", 3, [("RES-SCI", "Research Scientist")],
                 ("RES-DIR", "Research Director")),
    "Quality": ("Operations", 2, [("QA-AUD", "Quality Auditor")], ("QA-MGR", "Quality Lead")),
    "Security": ("Corporate", 2, [("SEC-ANL", "Security Analyst")], ("SEC-CISO", "CISO")),
    "Partnerships": ("Revenue", 2, [("PAR-MGR", "Partner Manager")],
                     ("PAR-DIR", "Director, Partnerships")),
    "Training": ("Corporate", 1, [("TRN-INS", "Instructor")], ("TRN-MGR", "Training Lead")),
    "Internal Audit": ("Corporate", 1, [("AUD-INT", "Internal Auditor")],
                       ("AUD-HEAD", "Head of Internal Audit")),
    "Treasury": ("Corporate", 1, [("TRS-ANL", "Treasury Analyst")],
                 ("TRS-MGR", "Treasurer")),
}
TYPES = (("Employee", 82), ("Contractor", 13), ("Intern", 3), ("Temporary", 2))
ENTITIES = ("Acme Corp", "Acme Europe SAS", "Acme APAC Pte. Ltd.")
ENTITY_OF = {"Paris": 1, "Berlin": 1, "Madrid": 1, "London": 1, "Singapore": 2,
             "Bengaluru": 2, "Sydney": 2}


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# ---- the files -------------------------------------------------------------------------------

def _fold(text: str) -> str:
    plain = unicodedata.normalize("NFKD", text.translate(str.maketrans(
        {"ø": "o", "Ø": "O", "æ": "ae", "Æ": "Ae", "ł": "l", "Ł": "L"})))
    return "".join(c for c in plain.lower() if c.isascii() and (c.isalnum() or c == "-"))


class Population:
    """The workers (a list of dicts keyed by CSV header) and what the changes need."""

    def __init__(self, workers: int, seed: int = 17) -> None:
        self.rng = rng = random.Random(seed)
        self.today = date.today()
        self.ids = [f"{n:07d}" for n in rng.sample(range(1_000_000, 9_999_999), workers * 2)]
        self.next_id = workers
        self.emails: set[str] = set()
        self.given = [g for g, _ in GIVEN], [w for _, w in GIVEN]
        self.family = [f for f, _ in FAMILY], [w for _, w in FAMILY]
        self.departments = [d for d in DEPARTMENTS if DEPARTMENTS[d][1]]
        self.dept_weights = [DEPARTMENTS[d][1] for d in self.departments]
        self.rows: list[dict[str, str]] = []
        self.managers: list[int] = []  # indexes of workers who manage someone (or may)
        self.has_reports: set[int] = set()
        self._build(workers)

    def _name(self) -> tuple[str, str]:
        rng = self.rng
        given = rng.choices(*self.given)[0]
        if rng.random() < 0.6:
            family = rng.choices(*self.family)[0]
        else:  # the long tail
            family = "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 3))).title()
        return given, family

    def _email(self, given: str, family: str) -> str:
        base = f"{_fold(given)}.{_fold(family)}"
        email, n = f"{base}@acme.example", 1
        while email in self.emails:
            n += 1
            email = f"{base}{n}@acme.example"
        self.emails.add(email)
        return email

    def _worker(self, index: int, manager: int | None, department: str, location: str,
                manager_job: bool, kind: str, hire: date, end: date | None) -> dict[str, str]:
        given, family = self._name()
        division, _w, jobs, boss_job = DEPARTMENTS[department]
        code, title = boss_job if manager_job else self.rng.choice(jobs)
        if index == 0:
            code, title = "EXE-CEO", "Chief Executive Officer"
        loc_index = [name for name, _z, _w in LOCATIONS].index(location)
        dept_index = list(DEPARTMENTS).index(department)
        preferred = ""
        if self.rng.random() < 0.04:
            preferred = f"{given.split('-')[0]} {family}"
        return {
            "Employee ID": self.ids[index], "First Name": given, "Last Name": family,
            "Preferred Name": preferred, "Work Email": self._email(given, family),
            "Manager ID": self.ids[manager] if manager is not None else "",
            "Department": department, "Location": location, "Job Code": code,
            "Job Title": title, "Cost Center": f"CC-{dept_index:02d}{loc_index:02d}",
            "Worker Type": kind, "Hire Date": hire.isoformat(),
            "Termination Date": end.isoformat() if end else "", "Division": division,
            "Legal Entity": ENTITIES[ENTITY_OF.get(location, 0)],
        }

    def _build(self, workers: int) -> None:
        rng = self.rng
        locations = [name for name, _z, _w in LOCATIONS]
        loc_weights = [w for _n, _z, w in LOCATIONS]
        self.rows.append(self._worker(0, None, "Executive", "New York", True, "Employee",
                                      self.today - timedelta(days=4000), None))
        self.managers.append(0)
        capacity = {0: 10}
        open_ = [0]
        for i in range(1, workers):
            boss = open_[rng.randrange(len(open_))]
            capacity[boss] -= 1
            if capacity[boss] == 0:
                open_.remove(boss)
            self.has_reports.add(boss)
            boss_row = self.rows[boss]
            manages = rng.random() < 0.14 or len(open_) < 20
            if boss == 0:
                department = self.departments[(i - 1) % len(self.departments)]
            elif rng.random() < 0.85:
                department = boss_row["Department"]
            else:
                department = rng.choices(self.departments, self.dept_weights)[0]
            location = (boss_row["Location"] if rng.random() < 0.7
                        else rng.choices(locations, loc_weights)[0])
            kind = "Employee" if manages else rng.choices(
                [k for k, _ in TYPES], [w for _, w in TYPES])[0]
            if rng.random() < 0.01 and not manages:
                hire = self.today + timedelta(days=rng.randint(5, 60))  # prehire
            else:
                hire = self.today - timedelta(days=rng.randint(1, 7000))
            end = (self.today + timedelta(days=rng.randint(5, 90))
                   if rng.random() < 0.003 and not manages and hire < self.today else None)
            self.rows.append(self._worker(i, boss, department, location, manages, kind,
                                          hire, end))
            if manages:
                self.managers.append(i)
                capacity[i] = rng.randint(3, 12)
                open_.append(i)

    def changed(self, changes: int) -> tuple[list[dict[str, str]], dict[str, int]]:
        """A copy of the rows with ``changes`` changes, and the counts a run should find."""
        rng = random.Random(23)
        rows = [dict(r) for r in self.rows]
        share = {"movers": 0.50, "updates": 0.20, "leavers": 0.10, "joiners": 0.10,
                 "manager_changes": 0.05, "conversions": 0.05}
        n = {k: round(changes * v) for k, v in share.items()}
        n["movers"] = changes - sum(v for k, v in n.items() if k != "movers")
        plain = [i for i, r in enumerate(rows)
                 if i and not r["Termination Date"] and r["Hire Date"] < self.today.isoformat()]
        rng.shuffle(plain)
        leaves = [i for i in plain if i not in self.has_reports]
        contractors = [i for i in plain if rows[i]["Worker Type"] == "Contractor"]
        used: set[int] = set()

        def take(pool: list[int], count: int) -> list[int]:
            out = []
            for i in pool:
                if len(out) == count:
                    break
                if i not in used:
                    used.add(i)
                    out.append(i)
            if len(out) < count:
                raise SystemExit(f"not enough workers to change ({count} wanted)")
            return out

        for i in take(contractors, n["conversions"]):
            rows[i]["Worker Type"] = "Employee"
        for i in take(leaves, n["manager_changes"]):
            current = rows[i]["Manager ID"]
            while True:
                boss = rng.choice(self.managers)
                if self.ids[boss] != current and boss != i:
                    break
            rows[i]["Manager ID"] = self.ids[boss]
        for k, i in enumerate(take(leaves, n["leavers"])):
            days = -rng.randint(1, 5) if k % 2 == 0 else rng.randint(5, 30)
            rows[i]["Termination Date"] = (self.today + timedelta(days=days)).isoformat()
        for i in take(plain, n["movers"]):
            old = rows[i]["Department"]
            department = rng.choice([d for d in self.departments if d != old])
            code, title = rng.choice(DEPARTMENTS[department][2])
            rows[i].update({"Department": department, "Job Code": code, "Job Title": title,
                            "Division": DEPARTMENTS[department][0]})
        for i in take(plain, n["updates"]):
            rows[i]["Last Name"] = rng.choice([f for f, _ in FAMILY if f != rows[i]["Last Name"]])
        for _ in range(n["joiners"]):
            index = self.next_id
            self.next_id += 1
            boss = rng.choice(self.managers)
            boss_row = self.rows[boss]
            hire = self.today + timedelta(days=rng.randint(-3, 30))
            rows.append(self._worker(index, boss, boss_row["Department"],
                                     boss_row["Location"], False, "Employee", hire, None))
        rng.shuffle(rows)
        expected = {"joiners": n["joiners"], "movers": n["movers"] + n["manager_changes"],
                    "updates": n["updates"], "leavers": n["leavers"],
                    "conversions": n["conversions"], "rehires": 0,
                    "unchanged": len(self.rows) - (changes - n["joiners"]), "rejected": 0}
        return rows, expected


def write_csv(path: Path, rows: Sequence[dict[str, str]]) -> None:
    """As an HR system exports: a byte order mark, CRLF, quotes where needed."""
    with path.open("w", encoding="utf-8-sig", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=HEADERS, lineterminator="\r\n")
        writer.writeheader()
        writer.writerows(rows)


def make_files(folder: Path, workers: int, changes: int) -> dict[str, Any]:
    started = time.perf_counter()
    population = Population(workers)
    first = list(population.rows)
    random.Random(31).shuffle(first)  # the hierarchy arrives in any order
    write_csv(folder / "snapshot.csv", first)
    changed, expected = population.changed(changes)
    write_csv(folder / "changed.csv", changed)
    managers = len(population.has_reports)
    types: dict[str, int] = {}
    for row in population.rows:
        types[row["Worker Type"]] = types.get(row["Worker Type"], 0) + 1
    info = {"expected_delta": expected, "managers": managers, "employment_types": types,
            "prehires": sum(r["Hire Date"] > population.today.isoformat()
                            for r in population.rows),
            "future_terminations": sum(bool(r["Termination Date"]) for r in population.rows),
            "file_mb": round((folder / "snapshot.csv").stat().st_size / 1e6, 1),
            "generate_s": round(time.perf_counter() - started, 1)}
    (folder / "expected.json").write_text(json.dumps(info))
    return info


# ---- the catalog (through the product's services) -------------------------------------------

APPS = (("Corporate Directory", True), ("ERP", True), ("CRM", True), ("Intranet", False))
ENTITLEMENTS = {
    "Corporate Directory": ("all-staff", "vpn", "employees", "contractors", "interns",
                            "paris-office", "london-office", "new-york-office",
                            "bengaluru-office", "finance", "engineering", "it-admins",
                            "hr", "legal", "support"),
    "ERP": ("self-service", "gl-read", "gl-post", "ap-approve", "procurement", "hr-records"),
    "CRM": ("crm-user", "crm-manager", "support-desk", "marketing-campaigns"),
    "Intranet": ("news", "wiki-edit", "expenses", "timesheets", "it-tools"),
}
ROLES: dict[str, tuple[list[tuple[str, str]], list[str]]] = {
    # role -> ([(application, entitlement)], [included roles])
    "All Staff": ([("Corporate Directory", "all-staff"), ("Intranet", "news")], []),
    "Employee Base": ([("Corporate Directory", "employees"), ("Corporate Directory", "vpn"),
                       ("ERP", "self-service"), ("Intranet", "expenses")], ["All Staff"]),
    "Contractor Base": ([("Corporate Directory", "contractors"),
                         ("Intranet", "timesheets")], ["All Staff"]),
    "Intern Base": ([("Corporate Directory", "interns")], ["All Staff"]),
    "Finance Analyst": ([("Corporate Directory", "finance"), ("ERP", "gl-read"),
                         ("ERP", "gl-post")], []),
    "Finance Approver": ([("ERP", "ap-approve")], ["Finance Analyst"]),
    "Sales Rep": ([("CRM", "crm-user")], []),
    "Sales Manager": ([("CRM", "crm-manager")], ["Sales Rep"]),
    "Engineer": ([("Corporate Directory", "engineering"), ("Intranet", "wiki-edit")], []),
    "Site Reliability": ([("Corporate Directory", "it-admins")], ["Engineer"]),
    "IT Staff": ([("Corporate Directory", "it-admins"), ("Intranet", "it-tools")], []),
    "HR Staff": ([("Corporate Directory", "hr"), ("ERP", "hr-records")], []),
    "Legal Staff": ([("Corporate Directory", "legal")], []),
    "Support Agent": ([("Corporate Directory", "support"), ("CRM", "support-desk")], []),
    "Marketing": ([("CRM", "marketing-campaigns")], ["Sales Rep"]),
    "Buyer": ([("ERP", "procurement")], []),
    "Paris Office": ([("Corporate Directory", "paris-office")], []),
    "London Office": ([("Corporate Directory", "london-office")], []),
    "New York Office": ([("Corporate Directory", "new-york-office")], []),
    "Bengaluru Office": ([("Corporate Directory", "bengaluru-office")], []),
    "Data Access": ([("ERP", "gl-read")], ["Engineer"]),
    "People Manager": ([("ERP", "ap-approve"), ("Intranet", "wiki-edit")], []),
}


def _eq(attribute: str, value: str) -> dict[str, Any]:
    return {"attribute": attribute, "op": "eq", "value": value}


RULES: list[tuple[str, dict[str, Any], str]] = [
    ("everyone", {"all": []}, "All Staff"),
    ("employees", _eq("employment_type", "employee"), "Employee Base"),
    ("contractors and temps", {"attribute": "employment_type", "op": "in",
                               "value": ["contractor", "temporary"]}, "Contractor Base"),
    ("interns", _eq("employment_type", "intern"), "Intern Base"),
    ("finance", _eq("department", "Finance"), "Finance Analyst"),
    ("finance approvers", {"any": [_eq("job_code", "FIN-MGR"), _eq("job_code", "FIN-CTL")]},
     "Finance Approver"),
    ("sales", {"all": [_eq("department", "Sales"), {"not": _eq("employment_type", "intern")}]},
     "Sales Rep"),
    ("sales managers", _eq("job_code", "SAL-MGR"), "Sales Manager"),
    ("engineering", {"attribute": "department", "op": "in",
                     "value": ["Engineering", "Research"]}, "Engineer"),
    ("sre", _eq("job_code", "ENG-SRE"), "Site Reliability"),
    ("it", _eq("department", "IT"), "IT Staff"),
    ("hr", _eq("department", "Human Resources"), "HR Staff"),
    ("legal", _eq("department", "Legal"), "Legal Staff"),
    ("support", _eq("department", "Customer Support"), "Support Agent"),
    ("marketing", _eq("department", "Marketing"), "Marketing"),
    ("procurement", {"attribute": "job_code", "op": "starts_with", "value": "PRC-"}, "Buyer"),
    ("paris", _eq("location", "Paris"), "Paris Office"),
    ("london", _eq("location", "London"), "London Office"),
    ("new york", _eq("location", "New York"), "New York Office"),
    ("data", {"all": [_eq("department", "Data"), _eq("employment_type", "employee")]},
     "Data Access"),
]


def setup_catalog(factory: Any, clock: Any, changes: int) -> None:
    from cryptography.fernet import Fernet

    from idgov.applications.crypto import CredentialCipher
    from idgov.applications.schemas import ApplicationCreate
    from idgov.applications.service import create_application
    from idgov.birthright.rules import create_rule
    from idgov.birthright.schemas import BirthrightRuleCreate
    from idgov.catalog.composition import add_entitlement, include_role
    from idgov.catalog.schemas import (
        EntitlementCreate,
        InclusionCreate,
        RoleCreate,
        RoleEntitlementCreate,
    )
    from idgov.catalog.service import create_entitlement, create_role
    from idgov.db.session import unit_of_work
    from idgov.lifecycle.source_schemas import HrSourceCreate
    from idgov.lifecycle.sources import create_source
    from idgov.types import Actor

    actor = Actor.system("bench")
    cipher = CredentialCipher([Fernet.generate_key()])
    with unit_of_work(factory) as session:
        apps, ents, roles = {}, {}, {}
        for name, manages in APPS:
            settings: dict[str, Any] = {"target": f"bench-{_fold(name)}"}
            if not manages:
                settings["account_mapping"] = {"manage_accounts": False}
            # The API offers no "memory" kind (it is for trials and tests): the schema is
            # built unvalidated; the service itself is the product's.
            application_in = ApplicationCreate.model_construct(
                name=name, description=None, connector_kind="memory", settings=settings,
                credentials=None, owner_id=None, resolution_group_id=None, risk="medium")
            apps[name] = create_application(session, application_in=application_in,
                                            cipher=cipher, actor=actor, clock=clock).id
        for app, names in ENTITLEMENTS.items():
            for ent in names:
                ents[app, ent] = create_entitlement(session, entitlement_in=EntitlementCreate(
                    application_id=apps[app], native_id=f"cn={ent}", name=ent), actor=actor,
                    clock=clock).id
        for role in ROLES:
            roles[role] = create_role(session, role_in=RoleCreate(name=role), actor=actor,
                                      clock=clock).id
        for role, (granted, included) in ROLES.items():
            for key in granted:
                add_entitlement(session, role_id=roles[role], link_in=RoleEntitlementCreate(
                    entitlement_id=ents[key]), actor=actor, clock=clock)
            for child in included:
                include_role(session, role_id=roles[role], inclusion_in=InclusionCreate(
                    role_id=roles[child]), actor=actor, clock=clock)
        for name, condition, role in RULES:
            create_rule(session, rule_in=BirthrightRuleCreate(
                name=name, condition=condition, role_id=roles[role]), actor=actor, clock=clock)
        create_source(session, source_in=HrSourceCreate(
            name=SOURCE, kind="csv", column_mapping=MAPPING, default_mode="snapshot",
            termination_threshold_percent=5.0, change_threshold=2 * changes,
            default_time_zone="UTC",
            location_time_zones={name: zone for name, zone, _w in LOCATIONS}),
            actor=actor, clock=clock)


# ---- one backend (the child process) ---------------------------------------------------------

def _peak_rss_mb() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _counts(factory: Any) -> dict[str, int]:
    from sqlalchemy import func, select

    from idgov.models.assignment import Assignment
    from idgov.models.audit import AuditEvent
    from idgov.models.identity import Identity
    from idgov.models.provisioning import ProvisioningOperation

    with factory() as session:
        return {name: session.scalar(select(func.count()).select_from(model)) or 0
                for name, model in (("identities", Identity), ("assignments", Assignment),
                                    ("operations", ProvisioningOperation),
                                    ("audit_events", AuditEvent))}


def timed_import(factory: Any, clock: Any, path: Path, label: str,
                 profile: Path | None) -> tuple[float, dict[str, Any]]:
    """What ``idgov hr import`` does, in one unit of work; returns (seconds, the run)."""
    from idgov.db.session import unit_of_work
    from idgov.lifecycle import csvfeed, feed, sources
    from idgov.types import Actor

    actor = Actor.system("hr-cli")
    marks = {"next": 0.1}

    def progress(done: int, total: int) -> None:
        if total and done / total >= marks["next"]:
            _log(f"  {label}: applied {done}/{total} changes "
                 f"({time.perf_counter() - started:.1f} s)")
            while done / total >= marks["next"]:
                marks["next"] += 0.1

    profiler = cProfile.Profile() if profile else None
    started = time.perf_counter()
    if profiler:
        profiler.enable()
    with unit_of_work(factory) as session, path.open("rb") as stream:
        source = sources.get_source_by_name(session, SOURCE)
        parsed, digest = csvfeed.parse_csv_stream(stream, mapping={
            k: str(v) for k, v in source.column_mapping.items()})
        parse_s = time.perf_counter() - started
        _log(f"  {label}: read {parsed.rows} rows in {parse_s:.1f} s")
        run = feed.run_feed(session, source=source, parsed=parsed, mode=source.default_mode,
                            channel="file", file_name=path.name, file_sha256=digest,
                            actor=actor, clock=clock, progress=progress)
        applied_s = time.perf_counter() - started
        summary = {"state": run.state, "counts": dict(run.counts),
                   "hold_reason": run.hold_reason, "rejected_rows": len(run.errors),
                   "errors": run.errors[:5], "parse_s": round(parse_s, 2),
                   "run_feed_s": round(applied_s - parse_s, 2)}
        del parsed, run
    elapsed = time.perf_counter() - started
    if profiler:
        profiler.disable()
        assert profile is not None
        profiler.dump_stats(profile)
    summary["commit_s"] = round(elapsed - applied_s, 2)
    return elapsed, summary


def _check(label: str, summary: dict[str, Any], expected: dict[str, int]) -> None:
    counts = summary["counts"]
    wrong = {k: (counts.get(k), v) for k, v in expected.items() if counts.get(k, 0) != v}
    if summary["state"] != "applied" or wrong:
        raise SystemExit(f"{label}: the run is {summary['state']} "
                         f"({summary['hold_reason']}); counts (found, expected) that differ: "
                         f"{wrong}; first errors: {summary['errors']}")


def run_backend(backend: str, url: str | None, folder: Path, workers: int, changes: int,
                profile: Path | None) -> dict[str, Any]:
    from support.databases import scratch_database  # benchmarks/support, beside this script

    from idgov.audit.signing import generate_signer
    from idgov.config import Settings
    from idgov.db.migrate import upgrade
    from idgov.runtime import open_runtime

    expected = json.loads((folder / "expected.json").read_text())
    out: dict[str, Any] = {}
    with scratch_database(url if backend == "postgresql" else None, folder) as engine:
        started = time.perf_counter()
        upgrade(engine)
        runtime = open_runtime(Settings(var_dir=folder / "var"), engine=engine,
                               signer=generate_signer())
        factory, clock = runtime.session_factory, runtime.clock
        setup_catalog(factory, clock, changes)
        out["setup_s"] = round(time.perf_counter() - started, 1)
        _log(f"{backend}: migrated, catalog and source created in {out['setup_s']} s")

        def prof(name: str) -> Path | None:
            return profile / f"{backend}-{name}.prof" if profile else None

        steps: list[tuple[str, str, str, Callable[[dict[str, Any]], None]]] = [
            ("first_load_100k_s", "first load", "snapshot.csv", lambda s: _check(
                "first load", s, {"joiners": workers, "rejected": 0, "unchanged": 0})),
            ("noop_reload_100k_s", "no-op reload", "snapshot.csv", lambda s: _check(
                "no-op reload", s, {"unchanged": workers, "joiners": 0, "movers": 0,
                                    "leavers": 0, "updates": 0, "conversions": 0,
                                    "rehires": 0, "rejected": 0})),
            ("delta_1k_s", "delta", "changed.csv", lambda s: _check(
                "delta", s, expected["expected_delta"])),
        ]
        for key, label, file_name, check in steps:
            _log(f"{backend}: {label} of {file_name} ...")
            elapsed, summary = timed_import(factory, clock, folder / file_name,
                                            f"{backend} {label}", prof(key.removesuffix("_s")))
            check(summary)
            out[key] = round(elapsed, 2)
            summary.pop("errors")
            summary["after"] = _counts(factory)
            out[key.removesuffix("_s") + "_run"] = summary
            _log(f"{backend}: {label} in {elapsed:.1f} s: {summary['counts']} "
                 f"(read {summary['parse_s']} s, commit {summary['commit_s']} s); "
                 f"peak RSS so far {_peak_rss_mb()} MB")
        runtime.close()
    out["peak_rss_mb"] = _peak_rss_mb()
    return out


# ---- the parent --------------------------------------------------------------------------------

def _pg_url(given: str | None) -> str | None:
    url = given or os.environ.get("IDGOV_BENCH_DATABASE_URL")
    if url:
        return url
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=1):
            return DEFAULT_PG
    except OSError:
        return None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5,000 workers and 100 changes")
    parser.add_argument("--workers", type=int, help="workers in the snapshot (default "
                        "100,000; 5,000 with --quick)")
    parser.add_argument("--changes", type=int, help="changes in the changed snapshot "
                        "(default 1,000; 100 with --quick)")
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--database-url", help="PostgreSQL URL beside which a scratch "
                        "database is made (default: IDGOV_BENCH_DATABASE_URL, else "
                        "127.0.0.1:5432 when it answers)")
    parser.add_argument("--profile", type=Path, help="write a cProfile of each timed run "
                        "into this folder")
    parser.add_argument("--child", help=argparse.SUPPRESS)  # backend, in the child
    parser.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    workers = args.workers or (5_000 if args.quick else 100_000)
    changes = args.changes or (100 if args.quick else 1_000)
    if args.child:
        result = run_backend(args.child, args.database_url, args.folder, workers, changes,
                             args.profile)
        print(json.dumps(result))
        return

    report: dict[str, Any] = {"benchmark": "hr_feed", "workers": workers, "changes": changes,
                              "budgets": BUDGETS, "load_average_at_start": os.getloadavg(),
                              "cpus": os.cpu_count()}
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="idgov-bench-hr-") as temporary:
        folder = Path(temporary)
        _log(f"generating {workers} workers and {changes} changes ...")
        report["data"] = make_files(folder, workers, changes)
        _log(f"files written in {report['data']['generate_s']} s "
             f"({report['data']['file_mb']} MB each)")
        backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
        for backend in backends:
            url = _pg_url(args.database_url) if backend == "postgresql" else None
            if backend == "postgresql" and url is None:
                _log("postgresql: no server (set IDGOV_BENCH_DATABASE_URL): skipped")
                report[backend] = None
                continue
            command = [sys.executable, str(Path(__file__).resolve()), "--child", backend,
                       "--folder", str(folder), "--workers", str(workers),
                       "--changes", str(changes)]
            if url:
                command += ["--database-url", url]
            if args.profile:
                command += ["--profile", str(args.profile.resolve())]
            _log(f"{backend}: starting (load average {os.getloadavg()[0]:.2f}) ...")
            done = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=False)
            if done.returncode != 0:
                raise SystemExit(f"{backend}: the benchmark failed (exit {done.returncode})")
            result = json.loads(done.stdout.strip().splitlines()[-1])
            result["within_budget"] = {k: result[k] <= v for k, v in BUDGETS.items()}
            report[backend] = result
    report["load_average_at_end"] = os.getloadavg()
    report["notes"] = (
        "each time is one `idgov hr import`-like unit of work: parse_csv_stream + run_feed "
        "+ commit (the audit sealer installed as open_runtime does); *_run.parse_s, "
        "run_feed_s and commit_s split it. Birthright rules are evaluated and provisioning "
        "operations recorded (memory connectors, never contacted). peak_rss_mb is the child "
        "process's VmHWM over setup and the three runs (the database server's memory is not "
        "counted). A run that is held, rejects rows or counts other than expected fails the "
        "benchmark.")
    print(json.dumps(report))


if __name__ == "__main__":
    main()
