"""The HR population of benchmarks/hr_feed.py: a seeded, realistic workforce written as an
HR system exports it (see that script's docstring for what it holds), and its changes."""

from __future__ import annotations

import csv
import json
import random
import sys
import time
import unicodedata
from collections.abc import Sequence
from datetime import date, timedelta
from pathlib import Path
from typing import Any

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


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# ---- the files -------------------------------------------------------------------------------

def fold(text: str) -> str:
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
        base = f"{fold(given)}.{fold(family)}"
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
