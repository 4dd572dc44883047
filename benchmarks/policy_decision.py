"""Policy decision latency, snapshot build time and the detective SoD scan at organisation scale.

    python benchmarks/policy_decision.py [--quick] [--database-url URL] [--decisions N]

Creates a catalog and an organisation in a real, migrated database (a throwaway SQLite file
by default; with ``--database-url postgresql+psycopg://...`` a scratch database is created
beside the given one and dropped afterwards): by default 100,000 identities each holding
about 10 roles and 5 direct entitlements, 10,000 roles including one another up to 6 deep,
50,000 entitlements and 2,000 SoD rules (``--quick``: a hundredth of it). Setup is bulk
inserts (SQLAlchemy core executemany). Then it measures the product's own functions:

- snapshot_build_s: ``idgov.catalog.snapshot.build_snapshot`` on a fresh session (cold);
- closure_warmup_s: ``PolicySnapshot.warm()``, memoising every role's closure and the other
  lazy tables on that snapshot (what "warm" means);
- decision latency: ``idgov.policy.decision.decide`` for N distinct random (beneficiary,
  item) pairs from the warm snapshot. Each beneficiary's assignments and exceptions are
  loaded with ``idgov.access.repository`` BEFORE the timed region (held_load_* report that
  load separately); the timed region is the ``decide`` call alone;
- sod_scan_s: ``idgov.sod_scan.service.run_scan`` over every identity, end to end (its own
  snapshot build, streaming every assignment in force, exceptions, explanations).

The last line printed is one JSON object: decision_p50_ms, decision_p99_ms,
snapshot_build_s, sod_scan_s, plus the scale, the budgets and notes.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, Table, insert
from sqlalchemy.orm import Session
from support.databases import scratch_database  # benchmarks/support, beside this script

from idgov.access.repository import assignments_at, exceptions_at
from idgov.catalog.snapshot import build_snapshot
from idgov.clock import FixedClock
from idgov.db.migrate import upgrade
from idgov.models.application import Application
from idgov.models.assignment import Assignment
from idgov.models.catalog import (
    Entitlement,
    Role,
    RoleEntitlement,
    RoleInclusion,
    SodException,
    SodRule,
    SodRuleItem,
)
from idgov.models.identity import Identity
from idgov.policy.decision import ApprovalPolicy, decide
from idgov.policy.snapshot import ItemRef
from idgov.sod_scan.service import run_scan

AS_OF = datetime(2026, 1, 15, 9, 0, tzinfo=UTC)
SINCE = AS_OF - timedelta(days=90)
BUDGETS = {"decision_p50_ms": 0.5, "decision_p99_ms": 2.0, "snapshot_build_s": 5.0,
           "sod_scan_s": 30.0}
FULL = {"identities": 100_000, "roles": 10_000, "entitlements": 50_000, "rules": 2_000,
        "roles_per_identity": 10, "entitlements_per_identity": 5, "depth": 6,
        "applications": 50, "exceptions": 2_000}
QUICK = {"identities": 1_000, "roles": 100, "entitlements": 500, "rules": 20,
         "roles_per_identity": 10, "entitlements_per_identity": 5, "depth": 6,
         "applications": 5, "exceptions": 20}
BATCH = 20_000
RISKS = (("low", 60), ("medium", 25), ("high", 12), ("critical", 3))
CLASSES = (("none", 87), ("pii", 10), ("regulated", 3))


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _uuid(rng: random.Random) -> uuid.UUID:
    return uuid.UUID(int=rng.getrandbits(128), version=4)


def _weighted(rng: random.Random, table: Sequence[tuple[str, int]]) -> str:
    return rng.choices([v for v, _ in table], weights=[w for _, w in table])[0]


def _bulk(engine: Engine, table: Table, rows: list[dict[str, Any]]) -> None:
    with engine.begin() as conn:
        for start in range(0, len(rows), BATCH):
            conn.execute(insert(table), rows[start:start + BATCH])


def populate(engine: Engine, scale: dict[str, int], seed: int = 7) -> dict[str, Any]:
    """The catalog and organisation of ``scale``; returns ids the measurements sample."""
    rng = random.Random(seed)
    stamp = {"created_at": SINCE, "updated_at": SINCE}
    apps = [{"id": _uuid(rng), "name": f"app-{i:03d}", "connector_kind": "manual",
             "settings": {}, "risk": "medium", **stamp} for i in range(scale["applications"])]
    _bulk(engine, Application.__table__, apps)  # type: ignore[arg-type]

    ents = [{"id": _uuid(rng), "application_id": apps[i % len(apps)]["id"], "kind": "group",
             "native_id": f"cn=ent-{i:06d}", "name": f"ent-{i:06d}",
             "risk": _weighted(rng, RISKS), "privileged": rng.random() < 0.03,
             "data_classification": _weighted(rng, CLASSES), "requestable": True, **stamp}
            for i in range(scale["entitlements"])]
    _bulk(engine, Entitlement.__table__, ents)  # type: ignore[arg-type]

    # Roles on levels 0 (top business roles) .. depth (leaves); a role includes 1-2 roles of
    # the next level, so the longest inclusion chain is ``depth`` links.
    depth = scale["depth"]
    roles: list[dict[str, Any]] = [{"id": _uuid(rng), "name": f"role-{i:05d}",
              "kind": "business" if i % (depth + 1) == 0 else "technical",
              "requestable": True, **stamp} for i in range(scale["roles"])]
    _bulk(engine, Role.__table__, roles)  # type: ignore[arg-type]
    levels: list[list[uuid.UUID]] = [[] for _ in range(depth + 1)]
    for i, role in enumerate(roles):
        levels[i % (depth + 1)].append(role["id"])
    inclusions = []
    for level in range(depth):
        for parent in levels[level]:
            for child in rng.sample(levels[level + 1], rng.choice((1, 2))):
                inclusions.append({"id": _uuid(rng), "parent_role_id": parent,
                                   "child_role_id": child, "valid_from": SINCE})
    _bulk(engine, RoleInclusion.__table__, inclusions)  # type: ignore[arg-type]
    per_role = max(1, scale["entitlements"] // scale["roles"])
    links = [{"id": _uuid(rng), "role_id": role["id"], "entitlement_id": ent["id"],
              "valid_from": SINCE}
             for role in roles for ent in rng.sample(ents, per_role)]
    _bulk(engine, RoleEntitlement.__table__, links)  # type: ignore[arg-type]

    rules, items = [], []
    for i in range(scale["rules"]):
        rule_id = _uuid(rng)
        rules.append({"id": rule_id, "name": f"rule-{i:05d}", "severity": _weighted(
            rng, (("medium", 30), ("high", 50), ("critical", 20))),
            "exception_allowed": rng.random() < 0.8, "enabled": rng.random() < 0.95, **stamp})
        for side in ("a", "b"):
            for _ in range(rng.randint(1, 3)):
                ref: dict[str, Any]
                if rng.random() < 0.5:
                    ref = {"role_id": rng.choice(roles)["id"], "entitlement_id": None}
                else:
                    ref = {"role_id": None, "entitlement_id": rng.choice(ents)["id"]}
                items.append({"id": _uuid(rng), "rule_id": rule_id, "side": side, **ref})
    _bulk(engine, SodRule.__table__, rules)  # type: ignore[arg-type]
    _bulk(engine, SodRuleItem.__table__, items)  # type: ignore[arg-type]

    identities = [{"id": _uuid(rng), "employee_id": f"E{i:06d}", "given_name": "Bench",
                   "family_name": f"Person{i}", "display_name": f"Bench Person{i}",
                   "employment_type": "employee", "lifecycle_state": "active",
                   "attributes": {}, **stamp} for i in range(scale["identities"])]
    _bulk(engine, Identity.__table__, identities)  # type: ignore[arg-type]
    assignments: list[dict[str, Any]] = []
    role_ids = [r["id"] for r in roles]
    ent_ids = [e["id"] for e in ents]
    for person in identities:
        for role_id in rng.sample(role_ids, scale["roles_per_identity"]):
            assignments.append({"id": _uuid(rng), "identity_id": person["id"],
                                "role_id": role_id, "entitlement_id": None,
                                "source": "request", "valid_from": SINCE, **stamp})
        for ent_id in rng.sample(ent_ids, scale["entitlements_per_identity"]):
            assignments.append({"id": _uuid(rng), "identity_id": person["id"],
                                "role_id": None, "entitlement_id": ent_id,
                                "source": "admin", "valid_from": SINCE, **stamp})
        if len(assignments) >= 200_000:
            _bulk(engine, Assignment.__table__, assignments)  # type: ignore[arg-type]
            assignments = []
    _bulk(engine, Assignment.__table__, assignments)  # type: ignore[arg-type]
    exceptions = [{"id": _uuid(rng), "rule_id": rng.choice(rules)["id"],
                   "identity_id": rng.choice(identities)["id"], "control": "monthly review",
                   "expires_at": AS_OF + timedelta(days=180), **stamp}
                  for _ in range(scale["exceptions"])]
    _bulk(engine, SodException.__table__, exceptions)  # type: ignore[arg-type]
    return {"identities": [p["id"] for p in identities], "roles": role_ids,
            "entitlements": ent_ids}


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def measure(engine: Engine, ids: dict[str, Any], decisions: int, seed: int = 11
            ) -> dict[str, Any]:
    rng = random.Random(seed)
    result: dict[str, Any] = {}
    with Session(engine) as session:
        started = time.perf_counter()
        snapshot = build_snapshot(session, as_of=AS_OF)
        result["snapshot_build_s"] = round(time.perf_counter() - started, 3)
    _log(f"snapshot built in {result['snapshot_build_s']} s")
    started = time.perf_counter()
    snapshot.warm()
    result["closure_warmup_s"] = round(time.perf_counter() - started, 3)

    pairs: set[tuple[uuid.UUID, ItemRef]] = set()
    while len(pairs) < decisions:
        person = rng.choice(ids["identities"])
        item = (ItemRef("role", rng.choice(ids["roles"])) if rng.random() < 0.6
                else ItemRef("entitlement", rng.choice(ids["entitlements"])))
        pairs.add((person, item))
    ordered = sorted(pairs, key=lambda p: (str(p[0]), p[1].type, str(p[1].id)))
    rng.shuffle(ordered)
    prepared = []
    loads: list[float] = []
    with Session(engine) as session:
        for person, item in ordered:
            started = time.perf_counter()
            held = assignments_at(session, person, AS_OF)
            excepted = exceptions_at(session, person, AS_OF)
            loads.append((time.perf_counter() - started) * 1000)
            prepared.append((item, held, excepted))
    policy = ApprovalPolicy(auto_approve_max_risk="low")
    latencies: list[float] = []
    blocked = violating = 0
    for item, held, excepted in prepared:
        started = time.perf_counter()
        decision = decide(snapshot, item=item, held=held, exceptions=excepted, policy=policy)
        latencies.append((time.perf_counter() - started) * 1000)
        blocked += not decision.allowed
        violating += bool(decision.violations)
    result.update({
        "decisions": len(latencies),
        "decision_p50_ms": round(statistics.median(latencies), 4),
        "decision_p99_ms": round(_percentile(latencies, 0.99), 4),
        "decision_max_ms": round(max(latencies), 4),
        "decisions_with_violations": violating, "decisions_blocked": blocked,
        "held_load_p50_ms": round(statistics.median(loads), 4),
        "held_load_p99_ms": round(_percentile(loads, 0.99), 4),
    })
    _log(f"decide p50 {result['decision_p50_ms']} ms, p99 {result['decision_p99_ms']} ms")

    with Session(engine) as session:
        started = time.perf_counter()
        report = run_scan(session, as_of=AS_OF, clock=FixedClock(AS_OF))
        result["sod_scan_s"] = round(time.perf_counter() - started, 3)
    result["sod_scan_violations"] = len(report.findings)
    result["sod_scan_unmitigated"] = report.unmitigated
    result["sod_scan_identities_in_violation"] = len({f.identity.id for f in report.findings})
    _log(f"scan in {result['sod_scan_s']} s: {len(report.findings)} violations")
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a hundredth of the full scale")
    parser.add_argument("--database-url", help="SQLAlchemy URL (default: a temporary SQLite "
                        "file; PostgreSQL: a scratch database beside it, dropped afterwards; "
                        "another SQLite file must be new, it is migrated and filled)")
    parser.add_argument("--decisions", type=int, help="decisions timed (default 5000, "
                        "500 with --quick)")
    args = parser.parse_args(argv)
    scale = QUICK if args.quick else FULL
    decisions = args.decisions or (500 if args.quick else 5_000)
    report: dict[str, Any] = {"benchmark": "policy_decision", "scale": scale,
                              "budgets": BUDGETS}
    with scratch_database(args.database_url) as engine:
        report["backend"] = engine.dialect.name
        upgrade(engine)
        _log(f"{engine.dialect.name}: populating {scale} ...")
        started = time.perf_counter()
        ids = populate(engine, scale)
        report["setup_s"] = round(time.perf_counter() - started, 1)
        _log(f"populated in {report['setup_s']} s")
        report.update(measure(engine, ids, decisions))
    report["within_budget"] = {k: report[k] <= v for k, v in BUDGETS.items()}
    report["notes"] = (
        "decision latency times decide() alone on a warm snapshot (snapshot.warm(): every "
        "role closure memoised, closure_warmup_s; paths are memoised as decisions go); "
        "the beneficiary's held assignments and exceptions are "
        "loaded before the timed region (held_load_*_ms per beneficiary). snapshot_build_s "
        "is a cold build_snapshot; sod_scan_s is run_scan end to end, including its own "
        "snapshot build and closures, streaming every assignment in force.")
    print(json.dumps(report))


if __name__ == "__main__":
    main()
