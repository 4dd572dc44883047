"""Certification at scale: generating a campaign of a million review items, a reviewer's
page of 500 items, a bulk decision over 10,000 items.

    python benchmarks/campaign_generation.py [--quick] [--identities N]
        [--backend sqlite|postgresql|both] [--database-url URL]

Per backend (``sqlite``: a throwaway file; ``postgresql``: a scratch database beside
``--database-url``, else ``IDGOV_BENCH_DATABASE_URL``, else 127.0.0.1:5432 when it answers;
dropped afterwards), one child process: migrate, then set up with bulk inserts (SQLAlchemy
core executemany, not the product's paths): N = 100,000 identities (``--quick``: 5,000)
in 20 departments x 5 job codes, a manager hierarchy (1,000 managers under 50 directors;
1% of people without a manager, so the fallback runs), 50 applications, 2,000
entitlements (risk mix, 3% privileged, owners), 200 roles of 8 entitlements (a fifth
including another role), 20 SoD rules, and 10 assignments per identity (3 roles, 7
entitlements; sources request/birthright/admin; 2% from an approved request line with its
request, step and approval, so the "how granted" look-ups run). Then it times the
product's own functions, each in one unit of work:

- generate_1m_s: ``certification.campaigns.launch`` of a manager campaign over everything
  (fallbacks manager_of_manager, owner), i.e. ``certification.generation.generate_items``
  writing N x 10 review items with their context, plus the commit;
- peak_rss_mb: the child's peak resident memory (VmHWM) during generation (the peak is
  reset just before it, so the setup's own lists do not count);
- review_page_500_ms: ``certification.review.list_items`` for one reviewer's page of 500
  (median of 20 pages, on the generated campaign), "missing" when the review module is not
  there;
- bulk_decide_10k_s: ``certification.review.bulk_decide`` certifying 10,000 items of one
  campaign (a second campaign of that many items, generated for it), "missing" likewise;
- sign_off_10k_s: ``certification.review.sign_off_outcome`` of one reviewer holding 10,000
  decided items (a third campaign over the last identities' access; its items are given to
  one director and decided with a setup UPDATE: 90% certify, 10% revoke), i.e. every
  decision applied through the core (last certified, assignments end-dated, provisioning
  revoke operations, audit events) and the campaign closed, plus the commit.

The last line printed is one JSON object: per backend these numbers and details, plus the
scale and the budgets.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from support.children import log, reset_peak, run_children  # beside
from support.memory import peak_rss_mb  # benchmarks/support, beside this script

BUDGETS = {"sqlite": {"generate_1m_s": 120.0, "peak_rss_mb": 500.0,
                      "review_page_500_ms": 100.0, "bulk_decide_10k_s": 5.0},
           "postgresql": {"generate_1m_s": 60.0, "peak_rss_mb": 500.0,
                          "review_page_500_ms": 100.0, "bulk_decide_10k_s": 5.0}}
SIGN_OFF_ITEMS = 10_000
REVOKE_SHARE = 10  # one item in ten is revoked
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
SINCE = NOW - timedelta(days=200)
PER_IDENTITY = 10
BATCH = 20_000




def _uuid(rng: random.Random) -> uuid.UUID:
    return uuid.UUID(int=rng.getrandbits(128), version=4)


def populate(engine: Any, identities: int, seed: int = 3) -> dict[str, Any]:
    """The organisation, catalog and assignments, with bulk inserts; returns sample ids."""
    from sqlalchemy import insert

    from idgov.models.application import Application
    from idgov.models.assignment import Assignment
    from idgov.models.catalog import (
        Entitlement,
        Role,
        RoleEntitlement,
        RoleInclusion,
        SodRule,
        SodRuleItem,
    )
    from idgov.models.identity import Identity
    from idgov.models.requests import (
        AccessRequest,
        Approval,
        ApprovalStep,
        RequestLine,
        RequestType,
    )

    rng = random.Random(seed)
    stamp = {"created_at": SINCE, "updated_at": SINCE}

    def bulk(model: Any, rows: list[dict[str, Any]]) -> None:
        with engine.begin() as conn:
            for start in range(0, len(rows), BATCH):
                conn.execute(insert(model.__table__), rows[start:start + BATCH])

    people = [_uuid(rng) for _ in range(identities)]
    directors = people[:max(1, identities // 2000)]
    managers = people[len(directors):len(directors) + max(2, identities // 100)]
    departments = [f"Dept {d:02d}" for d in range(20)]
    rows = []
    for i, pid in enumerate(people):
        if pid in directors[:1]:
            manager = None
        elif i < len(directors):
            manager = directors[0]
        elif i < len(directors) + len(managers):
            manager = rng.choice(directors)
        else:
            manager = None if rng.random() < 0.01 else rng.choice(managers)
        rows.append({"id": pid, "employee_id": f"E{i:07d}", "given_name": "Bench",
                     "family_name": f"P{i}", "display_name": f"Bench P{i}",
                     "manager_id": manager, "department": departments[i % 20],
                     "job_code": f"J{(i // 20) % 5}", "employment_type": "employee",
                     "lifecycle_state": "active", "attributes": {}, **stamp})
    bulk(Identity, rows)
    rows = []
    apps = [{"id": _uuid(rng), "name": f"app-{i:02d}", "connector_kind": "manual",
             "settings": {}, "risk": "medium", "owner_id": rng.choice(managers), **stamp}
            for i in range(50)]
    bulk(Application, apps)
    risks = ["low"] * 60 + ["medium"] * 25 + ["high"] * 12 + ["critical"] * 3
    ents = [{"id": _uuid(rng), "application_id": apps[i % 50]["id"], "kind": "group",
             "native_id": f"cn=e{i}", "name": f"ent-{i:04d}", "risk": rng.choice(risks),
             "privileged": rng.random() < 0.03, "data_classification": "none",
             "owner_id": rng.choice(managers) if rng.random() < 0.9 else None,
             "requestable": True, **stamp} for i in range(2000)]
    bulk(Entitlement, ents)
    roles = [{"id": _uuid(rng), "name": f"role-{i:03d}", "kind": "business",
              "owner_id": rng.choice(managers), "requestable": True, **stamp}
             for i in range(200)]
    bulk(Role, roles)
    bulk(RoleEntitlement, [{"id": _uuid(rng), "role_id": r["id"], "entitlement_id": e["id"],
                            "valid_from": SINCE} for r in roles for e in rng.sample(ents, 8)])
    bulk(RoleInclusion, [{"id": _uuid(rng), "parent_role_id": roles[i]["id"],
                          "child_role_id": roles[i + 100]["id"], "valid_from": SINCE}
                         for i in range(0, 100, 2)])
    rules, items = [], []
    for i in range(20):
        rule_id = _uuid(rng)
        rules.append({"id": rule_id, "name": f"rule-{i:02d}", "severity": "high",
                      "exception_allowed": True, "enabled": True, **stamp})
        for side in ("a", "b"):
            items.append({"id": _uuid(rng), "rule_id": rule_id, "side": side, "role_id": None,
                          "entitlement_id": rng.choice(ents)["id"]})
    bulk(SodRule, rules)
    bulk(SodRuleItem, items)
    type_id = _uuid(rng)
    bulk(RequestType, [{"id": type_id, "key": "bench", "name": "Bench", "form_schema": {},
                        "approval_stages": [], "automatic_classifications": [], **stamp}])
    role_ids = [r["id"] for r in roles]
    ent_ids = [e["id"] for e in ents]
    sources = ["request"] * 5 + ["birthright"] * 3 + ["admin"] * 2
    assignments: list[dict[str, Any]] = []
    requests: list[dict[str, Any]] = []
    lines: list[dict[str, Any]] = []
    steps: list[dict[str, Any]] = []
    approvals: list[dict[str, Any]] = []
    for n, pid in enumerate(people):
        held = [("role", x) for x in rng.sample(role_ids, 3)] + \
               [("ent", x) for x in rng.sample(ent_ids, PER_IDENTITY - 3)]
        for kind, target in held:
            source = rng.choice(sources)
            line_id = None
            assignment_id = _uuid(rng)
            if source == "request" and rng.random() < 0.04:
                line_id, request_id, step_id = _uuid(rng), _uuid(rng), _uuid(rng)
                number = len(lines) + 1
                requests.append({"id": request_id, "number": f"REQ-2025-{number:06d}",
                                 "requester_id": pid, "beneficiary_id": pid,
                                 "request_type_id": type_id, "form_data": {},
                                 "state": "fulfilled", **stamp})
                lines.append({"id": line_id, "number": f"RITM-2025-{number:06d}",
                              "request_id": request_id, "beneficiary_id": pid,
                              "role_id": target if kind == "role" else None,
                              "entitlement_id": target if kind == "ent" else None,
                              "assignment_id": None, "state": "fulfilled", "decision": {},
                              "sod_exception_ids": [], **stamp})
                steps.append({"id": step_id, "line_id": line_id, "stage": 1,
                              "kind": "manager", "label": "Manager", "state": "approved",
                              **stamp})
                approvals.append({"id": _uuid(rng), "step_id": step_id,
                                  "approver_id": rng.choice(managers), "decision": "approve",
                                  "decided_at": SINCE})
            assignments.append({
                "id": assignment_id, "identity_id": pid,
                "role_id": target if kind == "role" else None,
                "entitlement_id": target if kind == "ent" else None, "source": source,
                "request_line_id": line_id, "granted_by": "system:bench",
                "valid_from": SINCE, **stamp})
        if len(assignments) >= 200_000 or n == len(people) - 1:
            bulk(Assignment, assignments)
            assignments = []
    for model, batch in ((AccessRequest, requests), (RequestLine, lines),
                         (ApprovalStep, steps), (Approval, approvals)):
        bulk(model, batch)
    return {"managers": managers, "people": people, "request_lines": len(lines)}


def _factory(engine: Any) -> Any:
    from idgov.audit.service import install_sealer
    from idgov.audit.signing import generate_signer
    from idgov.db.session import make_session_factory

    factory = make_session_factory(engine)
    install_sealer(factory, generate_signer())
    return factory


def _campaign(factory: Any, clock: Any, name: str, scope: dict[str, Any]) -> uuid.UUID:
    from certification.campaigns import create_campaign
    from certification.schemas_campaigns import CampaignCreate
    from idgov.db.session import unit_of_work
    from idgov.types import Actor

    with unit_of_work(factory) as session:
        campaign = create_campaign(session, campaign_in=CampaignCreate.model_validate({
            "name": name, "kind": "manager", "scope": scope,
            "fallbacks": ["manager_of_manager", "owner"],
            "deadline_at": (NOW + timedelta(days=30)).isoformat()}),
            actor=Actor.system("bench"), clock=clock)
        return campaign.id


def _launch(factory: Any, clock: Any, campaign_id: uuid.UUID) -> dict[str, Any]:
    from certification.campaigns import launch
    from idgov.db.session import unit_of_work
    from idgov.types import Actor

    with unit_of_work(factory) as session:
        campaign = launch(session, campaign_id=campaign_id, actor=Actor.system("bench"),
                          clock=clock)
        return dict(campaign.counts)


def _review_measures(factory: Any, clock: Any, engine: Any, campaign_id: uuid.UUID,
                     ids: dict[str, Any]) -> dict[str, Any]:
    """review_page_500_ms and bulk_decide_10k_s through the review module, if present."""
    out: dict[str, Any] = {}
    try:
        from certification import review, schemas_review
    except ImportError as exc:
        log(f"review module missing: {exc}")
        return {"review_page_500_ms": "missing", "bulk_decide_10k_s": "missing"}
    from sqlalchemy import func, select

    from certification.models import ReviewItem
    from idgov.auth.caller import Caller
    from idgov.db.session import unit_of_work

    filter_cls = next((getattr(schemas_review, n) for n in (
        "ReviewItemFilter", "ItemFilter", "ReviewFilter", "ReviewItemFilters")
        if hasattr(schemas_review, n)), None)
    with factory() as session:
        reviewer_id, count = session.execute(
            select(ReviewItem.reviewer_id, func.count()).where(
                ReviewItem.campaign_id == campaign_id, ReviewItem.reviewer_id.is_not(None))
            .group_by(ReviewItem.reviewer_id).order_by(func.count().desc()).limit(1)).one()
    caller = Caller.build(kind="oidc", name="reviewer", roles=frozenset({"manager"}),
                          identity_id=reviewer_id)
    out["review_page_reviewer_items"] = count
    if filter_cls is None or not hasattr(review, "list_items"):
        out["review_page_500_ms"] = "missing"
    else:
        timings = []
        for _ in range(20):
            with factory() as session:
                started = time.perf_counter()
                page = review.list_items(session, caller=caller, campaign_id=campaign_id,
                                         filters=filter_cls(limit=500))
                timings.append((time.perf_counter() - started) * 1000)
        out["review_page_500_ms"] = round(statistics.median(timings), 2)
        out["review_page_items"] = len(page.items)
    if not hasattr(review, "bulk_decide"):
        out["bulk_decide_10k_s"] = "missing"
        return out
    # A campaign of exactly 10,000 items: the first identities' access (10 each).
    wanted = ids["people"][:10_000 // PER_IDENTITY]
    other = _campaign(factory, clock, "bench 10k", {"identity_ids": [str(p) for p in wanted]})
    # The first campaign holds these assignments: cancel it so that this one may launch.
    from certification.campaigns import cancel_campaign
    from idgov.types import Actor

    with unit_of_work(factory) as session:
        cancel_campaign(session, campaign_id=campaign_id, reason="bench", actor=Actor.system(
            "bench"), clock=clock)
    counts = _launch(factory, clock, other)
    admin = Caller.build(kind="token", name="bench-admin", roles=frozenset({"administrator"}))
    selection_cls = getattr(review, "BulkSelection", None) or getattr(
        schemas_review, "BulkSelection", None)
    if selection_cls is None:
        out["bulk_decide_10k_s"] = "missing"
        return out
    selection: Any = selection_cls()
    started = time.perf_counter()
    with unit_of_work(factory) as session:
        decided = review.bulk_decide(session, campaign_id=other, selection=selection,
                                     decision="certify", comment="bench", caller=admin,
                                     clock=clock)
    out["bulk_decide_10k_s"] = round(time.perf_counter() - started, 3)
    out["bulk_decide_items"] = {"campaign": counts.get("items"), "decided": decided}
    return out


def _sign_off_measure(factory: Any, clock: Any, ids: dict[str, Any]) -> dict[str, Any]:
    """sign_off_10k_s: one reviewer signs off 10,000 decided items (see the module doc)."""
    from sqlalchemy import select, update

    from certification import review
    from certification.models import ReviewItem
    from idgov.auth.caller import Caller
    from idgov.db.session import unit_of_work

    if not hasattr(review, "sign_off_outcome"):
        return {"sign_off_10k_s": "missing"}
    # The last identities: never a director or a manager (they come first), so the reviewer
    # (the first director) reviews nobody's own access. The first campaign (cancelled) no
    # longer holds their assignments; the bulk campaign holds the first identities'.
    people = ids["people"][-(SIGN_OFF_ITEMS // PER_IDENTITY):]
    reviewer = ids["people"][0]
    campaign_id = _campaign(factory, clock, "bench sign-off",
                            {"identity_ids": [str(p) for p in people]})
    counts = _launch(factory, clock, campaign_id)
    with unit_of_work(factory) as session:
        mine = ReviewItem.campaign_id == campaign_id
        session.execute(update(ReviewItem).where(mine).values(
            reviewer_id=reviewer, reviewer_group_id=None, decision="certify",
            decided_at=NOW, decided_by=f"identity:{reviewer}"))
        item_ids = sorted(session.scalars(select(ReviewItem.id).where(mine)), key=str)
        revoked = item_ids[::REVOKE_SHARE]
        for start in range(0, len(revoked), 1000):
            session.execute(update(ReviewItem).where(
                ReviewItem.id.in_(revoked[start:start + 1000])).values(
                decision="revoke", comment="bench: no longer needed"))
    caller = Caller.build(kind="oidc", name="reviewer", roles=frozenset({"manager"}),
                          identity_id=reviewer)
    started = time.perf_counter()
    with unit_of_work(factory) as session:
        outcome = review.sign_off_outcome(session, campaign_id=campaign_id, caller=caller,
                                          clock=clock)
        applied, state = dict(outcome.applied), outcome.campaign_state
    seconds = round(time.perf_counter() - started, 3)
    return {"sign_off_10k_s": seconds,
            "sign_off_items": {"campaign": counts.get("items"), "revoke": len(revoked),
                               "applied": applied, "campaign_state": state}}


def run_backend(backend: str, url: str | None, identities: int) -> dict[str, Any]:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from support.databases import scratch_database  # benchmarks/support, beside this script

    from idgov.clock import FixedClock
    from idgov.db.migrate import upgrade

    out: dict[str, Any] = {}
    clock = FixedClock(NOW)
    with scratch_database(url if backend == "postgresql" else None) as engine:
        started = time.perf_counter()
        upgrade(engine)
        ids = populate(engine, identities)
        out["setup_s"] = round(time.perf_counter() - started, 1)
        out["request_lines"] = ids["request_lines"]
        log(f"{backend}: {identities} identities x {PER_IDENTITY} set up in "
             f"{out['setup_s']} s")
        factory = _factory(engine)
        campaign_id = _campaign(factory, clock, "bench quarterly", {})
        gc.collect()
        out["peak_reset"] = reset_peak()
        out["rss_before_generation_mb"] = peak_rss_mb()
        started, cpu = time.perf_counter(), time.process_time()
        counts = _launch(factory, clock, campaign_id)
        out["generate_1m_s"] = round(time.perf_counter() - started, 2)
        out["generate_cpu_s"] = round(time.process_time() - cpu, 2)  # this process only
        out["peak_rss_mb"] = peak_rss_mb()
        out["counts"] = {k: v for k, v in counts.items() if k != "items_digest"}
        log(f"{backend}: {counts['items']} items in {out['generate_1m_s']} s, peak RSS "
             f"{out['peak_rss_mb']} MB")
        if counts["items"] != identities * PER_IDENTITY:
            raise SystemExit(f"{backend}: expected {identities * PER_IDENTITY} items, "
                             f"got {counts['items']}")
        try:
            out.update(_review_measures(factory, clock, engine, campaign_id, ids))
        except Exception as exc:  # the review module is another helper's work in progress
            log(f"{backend}: review measures failed: {exc!r}")
            out.setdefault("review_page_500_ms", f"failed: {exc!r}"[:300])
            out.setdefault("bulk_decide_10k_s", f"failed: {exc!r}"[:300])
        try:
            out.update(_sign_off_measure(factory, clock, ids))
            log(f"{backend}: sign-off of {SIGN_OFF_ITEMS} items in "
                 f"{out['sign_off_10k_s']} s")
        except Exception as exc:
            log(f"{backend}: sign-off measure failed: {exc!r}")
            out.setdefault("sign_off_10k_s", f"failed: {exc!r}"[:300])
    return out




def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5,000 identities")
    parser.add_argument("--identities", type=int, help="default 100,000 (5,000 with --quick)")
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--database-url", help="PostgreSQL URL beside which a scratch "
                        "database is made (default: IDGOV_BENCH_DATABASE_URL, else "
                        "127.0.0.1:5432 when it answers)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    identities = args.identities or (5_000 if args.quick else 100_000)
    if args.child:
        print(json.dumps(run_backend(args.child, args.database_url, identities)))
        return
    report: dict[str, Any] = {"benchmark": "campaign_generation", "identities": identities,
                              "items": identities * PER_IDENTITY, "budgets": BUDGETS,
                              "load_average_at_start": os.getloadavg(), "cpus": os.cpu_count()}
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    results = run_children(__file__, backends, args.database_url,
                           ["--identities", str(identities)])
    for backend, result in results.items():
        report[backend] = result
        if result is None:
            continue
        result["within_budget"] = {k: (result[k] <= v if isinstance(result.get(k), int | float)
                                       else None) for k, v in BUDGETS[backend].items()}
        report[backend] = result
    report["load_average_at_end"] = os.getloadavg()
    report["notes"] = (
        "generate_cpu_s is the child's own CPU time during generation (the database "
        "server's is not counted on PostgreSQL): with other work on the machine, "
        "generate_1m_s exceeds it. "
        "generate_1m_s is certification.campaigns.launch (generate_items) plus the commit, "
        "one unit of work; peak_rss_mb is the child's VmHWM reset just before generation "
        "(setup excluded); review numbers come from certification.review when present.")
    print(json.dumps(report))


if __name__ == "__main__":
    main()
