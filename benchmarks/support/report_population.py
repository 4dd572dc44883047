"""The population of benchmarks/report_export.py: an organisation whose entitlement report
has about ``rows`` rows today, and about a tenth of that at a past instant.

Seeded and written with bulk inserts (SQLAlchemy core executemany, not the product's paths):

- identities (``rows / 10.4``): varied names (quotes, commas, accents), 25 departments, a
  manager hierarchy (1% without a manager), 3% terminated;
- 40 applications, 1,600 entitlements (risk mix, 3% privileged, native ids like LDAP DNs);
- 300 assignable roles of 3 entitlements each, 30 of them including one of 30 further roles
  of 2 entitlements (``how_held`` ``role: A > B``); composition links valid since ``SINCE``;
- per identity 2 roles and 4 direct entitlements (disjoint), sources request/birthright/admin
  (2% of requests with a request, line, step and approval; birthright grants name one of 20
  rules; admin grants carry a reason, some with commas and quotes), a fifth time-bound,
  a tenth certified; primary accounts on two applications;
- the *veterans* (the first tenth) hold theirs since ``SINCE``, everybody else since
  ``JOINED``; each veteran also held one grant revoked at ``REVOKED``: so the report at
  ``AS_OF`` (between ``SINCE`` and ``JOINED``) has about ``rows / 10`` rows.
"""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
SINCE = datetime(2025, 1, 6, 8, 0, tzinfo=UTC)
AS_OF = datetime(2025, 6, 30, 17, 0, tzinfo=UTC)
JOINED = datetime(2025, 9, 1, 8, 0, tzinfo=UTC)
REVOKED = datetime(2025, 11, 3, 10, 15, 30, tzinfo=UTC)
ROWS_PER_IDENTITY = 10.4
BATCH = 20_000

GIVEN = ("Ada", "José", "Zoë", "Søren", "Mary", "Wei", "Priya", "Olusegun", "Siobhán", "Jean-Luc",
         "D'Arcy", "Łukasz", "Noémie", "Hiroshi", "Fatima", "Mateo", "Emma", "Kwame", "Ștefan")
FAMILY = ("Smith", "O'Brien", "Müller", "García", "Nguyen", "de la Cruz", "Ødegaard", "Patel",
          "Kowalczyk", "Okafor", "Dvořák", "Öztürk", "Al-Hassan", "St. John", "Lefèvre")
DEPARTMENTS = [f"{d}" for d in ("Finance", "Accounts Payable", "Treasury", "Sales, EMEA",
                                "Sales, Americas", "Marketing", "Legal", "HR", "IT Ops",
                                "Engineering", "Security", "Procurement", "Support", "R&D",
                                "Facilities", "Audit", "Risk", "Compliance", "Data",
                                "Product", "Design", "Logistics", "Manufacturing",
                                "Quality", "Executive")]
APPLICATIONS = ("ledger", "payroll", "crm", "erp", "wiki", "vpn", "mail", "git", "jira",
                "hr-portal", "bi", "treasury", "ap", "ar", "legal-dms", "sso", "cmdb", "ci",
                "cloud-aws", "cloud-azure")
ACCESS = ("read", "write", "approve", "admin")
REASONS = ("quarter-end close", 'covering for "J. Smith", on leave', "audit request, ticket 4411",
           "project Atlas", "temporary: migration", "incident INC-2025-0093")


def _uuid(rng: random.Random) -> uuid.UUID:
    return uuid.UUID(int=rng.getrandbits(128), version=4)


def identities_for(rows: int) -> int:
    return max(20, round(rows / ROWS_PER_IDENTITY))


def populate(engine: Any, rows: int, seed: int = 7) -> dict[str, Any]:
    """Write the population for about ``rows`` report rows; returns counts."""
    from sqlalchemy import insert

    from idgov.models.application import Account, Application
    from idgov.models.assignment import Assignment
    from idgov.models.catalog import Entitlement, Role, RoleEntitlement, RoleInclusion
    from idgov.models.hr import BirthrightRule
    from idgov.models.identity import Identity
    from idgov.models.requests import (
        AccessRequest,
        Approval,
        ApprovalStep,
        RequestLine,
        RequestType,
    )

    rng = random.Random(seed)
    old = SINCE - timedelta(days=30)
    stamp = {"created_at": old, "updated_at": old}

    def bulk(model: Any, batch: list[dict[str, Any]]) -> None:
        with engine.begin() as conn:
            for start in range(0, len(batch), BATCH):
                conn.execute(insert(model.__table__), batch[start:start + BATCH])

    count = identities_for(rows)
    people = [_uuid(rng) for _ in range(count)]
    managers = people[1:max(3, count // 40)]
    batch = []
    for i, pid in enumerate(people):
        given, family = rng.choice(GIVEN), rng.choice(FAMILY)
        manager = None if i == 0 or rng.random() < 0.01 else (
            people[0] if i < len(managers) + 1 else rng.choice(managers))
        batch.append({
            "id": pid, "employee_id": f"E{i + 100000:07d}", "given_name": given,
            "family_name": family, "display_name": f"{family}, {given}",
            "email": f"p{i}@example.com", "manager_id": manager,
            "department": DEPARTMENTS[rng.randrange(len(DEPARTMENTS))],
            "job_code": f"J{rng.randrange(60):03d}", "employment_type": "employee",
            "lifecycle_state": "terminated" if rng.random() < 0.03 else "active",
            "attributes": {}, **stamp})
    bulk(Identity, batch)
    apps = [{"id": _uuid(rng), "name": f"app-{name}", "connector_kind": "manual",
             "settings": {}, "risk": rng.choice(["low", "medium", "high"]), **stamp}
            for name in (*APPLICATIONS, *(f"line-of-business-{n:02d}" for n in range(20)))]
    bulk(Application, apps)
    risks = ["low"] * 60 + ["medium"] * 25 + ["high"] * 12 + ["critical"] * 3
    ents = [{"id": _uuid(rng), "application_id": apps[i % len(apps)]["id"], "kind": "group",
             "native_id": f"cn=g{i:04d},ou=groups,dc=example,dc=com",
             "name": f"{apps[i % len(apps)]['name']} {rng.choice(ACCESS)} {i}",
             "risk": rng.choice(risks), "privileged": rng.random() < 0.03,
             "data_classification": "none", "requestable": True, **stamp} for i in range(1600)]
    bulk(Entitlement, ents)
    role_ents, direct_ents = ents[:960], ents[960:]
    roles = [{"id": _uuid(rng), "name": f"Role {i:03d}", "kind": "business",
              "requestable": True, **stamp} for i in range(330)]
    bulk(Role, roles)
    links = [{"id": _uuid(rng), "role_id": roles[r]["id"], "entitlement_id":
              role_ents[r * 3 + k]["id"], "valid_from": SINCE} for r in range(300)
             for k in range(3)]
    links += [{"id": _uuid(rng), "role_id": roles[300 + c]["id"], "entitlement_id":
               role_ents[900 + c * 2 + k]["id"], "valid_from": SINCE}
              for c in range(30) for k in range(2)]
    bulk(RoleEntitlement, links)
    bulk(RoleInclusion, [{"id": _uuid(rng), "parent_role_id": roles[r * 10]["id"],
                          "child_role_id": roles[300 + r]["id"], "valid_from": SINCE}
                         for r in range(30)])
    rules = [{"id": _uuid(rng), "name": f"Birthright {d}", "condition": {},
              "entitlement_id": direct_ents[n]["id"], "enabled": True, **stamp}
             for n, d in enumerate(DEPARTMENTS[:20])]
    bulk(BirthrightRule, rules)
    type_id = _uuid(rng)
    bulk(RequestType, [{"id": type_id, "key": "bench", "name": "Bench", "form_schema": {},
                        "approval_stages": [], "automatic_classifications": [], **stamp}])
    accounts, assignments = [], []
    requests: list[dict[str, Any]] = []
    lines: list[dict[str, Any]] = []
    steps: list[dict[str, Any]] = []
    approvals: list[dict[str, Any]] = []
    veterans = count // 10
    for n, pid in enumerate(people):
        since = SINCE if n < veterans else JOINED
        for app in (apps[n % len(apps)], apps[(n + 7) % len(apps)]):
            accounts.append({"id": _uuid(rng), "application_id": app["id"],
                             "native_id": f"uid=u{n},{app['name']}", "username": f"u{n}",
                             "account_type": "primary", "identity_id": pid,
                             "status": "active", "attributes": {}, **stamp})
        held = [("role", r["id"]) for r in rng.sample(roles[:300], 2)] + \
               [("ent", e["id"]) for e in rng.sample(direct_ents, 4)]
        if n < veterans:
            held.append(("ent-revoked", rng.choice(direct_ents)["id"]))
        for kind, target in held:
            source = rng.choice(("request", "request", "birthright", "admin"))
            row: dict[str, Any] = {
                "id": _uuid(rng), "identity_id": pid,
                "role_id": target if kind == "role" else None,
                "entitlement_id": None if kind == "role" else target, "source": source,
                "granted_by": "system:bench", "valid_from": since, **stamp,
                "valid_until": NOW + timedelta(days=rng.randrange(10, 300))
                if rng.random() < 0.2 else None,
                "revoked_at": REVOKED if kind == "ent-revoked" else None,
                "reason": rng.choice(REASONS) if source == "admin" else None,
                "birthright_rule_id": rng.choice(rules)["id"] if source == "birthright"
                else None, "last_certified_at": None, "last_certified_by": None,
                "request_line_id": None}
            if rng.random() < 0.1:
                row["last_certified_at"] = since + timedelta(days=40, seconds=n)
                row["last_certified_by"] = "Reviewer, Quarterly (E0100001)"
            if source == "request" and rng.random() < 0.02:
                line_id, request_id, step_id = _uuid(rng), _uuid(rng), _uuid(rng)
                number = len(lines) + 1
                requests.append({"id": request_id, "number": f"REQ-2025-{number:06d}",
                                 "requester_id": pid, "beneficiary_id": pid,
                                 "request_type_id": type_id, "form_data": {},
                                 "state": "fulfilled", **stamp})
                lines.append({"id": line_id, "number": f"RITM-2025-{number:06d}",
                              "request_id": request_id, "beneficiary_id": pid,
                              "role_id": row["role_id"], "entitlement_id": row["entitlement_id"],
                              "assignment_id": None, "state": "fulfilled", "decision": {},
                              "sod_exception_ids": [], **stamp})
                steps.append({"id": step_id, "line_id": line_id, "stage": 1, "kind": "manager",
                              "label": "Manager", "state": "approved", **stamp})
                approvals.append({"id": _uuid(rng), "step_id": step_id,
                                  "approver_id": rng.choice(managers), "decision": "approve",
                                  "decided_at": since - timedelta(hours=2)})
                row["request_line_id"] = line_id
            assignments.append(row)
        if len(assignments) >= 100_000:
            bulk(Assignment, assignments)
            bulk(Account, accounts)
            assignments, accounts = [], []
    bulk(Assignment, assignments)
    bulk(Account, accounts)
    for model, rows_of in ((AccessRequest, requests), (RequestLine, lines),
                           (ApprovalStep, steps), (Approval, approvals)):
        bulk(model, rows_of)
    return {"identities": count, "veterans": veterans, "request_lines": len(lines)}
