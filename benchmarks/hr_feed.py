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
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from support.hr_population import (  # benchmarks/support, beside this script
    LOCATIONS,
    MAPPING,
    fold,
    log,
    make_files,
)
from support.memory import peak_rss_mb

BUDGETS = {"first_load_100k_s": 60.0, "noop_reload_100k_s": 10.0, "delta_1k_s": 10.0,
           "peak_rss_mb": 500.0}
DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
SOURCE = "Workday export"

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
            settings: dict[str, Any] = {"target": f"bench-{fold(name)}"}
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
            log(f"  {label}: applied {done}/{total} changes "
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
        log(f"  {label}: read {parsed.rows} rows in {parse_s:.1f} s")
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
        log(f"{backend}: migrated, catalog and source created in {out['setup_s']} s")

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
            log(f"{backend}: {label} of {file_name} ...")
            elapsed, summary = timed_import(factory, clock, folder / file_name,
                                            f"{backend} {label}", prof(key.removesuffix("_s")))
            check(summary)
            out[key] = round(elapsed, 2)
            summary.pop("errors")
            summary["after"] = _counts(factory)
            out[key.removesuffix("_s") + "_run"] = summary
            log(f"{backend}: {label} in {elapsed:.1f} s: {summary['counts']} "
                 f"(read {summary['parse_s']} s, commit {summary['commit_s']} s); "
                 f"peak RSS so far {peak_rss_mb()} MB")
        runtime.close()
    out["peak_rss_mb"] = peak_rss_mb()
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
        log(f"generating {workers} workers and {changes} changes ...")
        report["data"] = make_files(folder, workers, changes)
        log(f"files written in {report['data']['generate_s']} s "
             f"({report['data']['file_mb']} MB each)")
        backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
        for backend in backends:
            url = _pg_url(args.database_url) if backend == "postgresql" else None
            if backend == "postgresql" and url is None:
                log("postgresql: no server (set IDGOV_BENCH_DATABASE_URL): skipped")
                report[backend] = None
                continue
            command = [sys.executable, str(Path(__file__).resolve()), "--child", backend,
                       "--folder", str(folder), "--workers", str(workers),
                       "--changes", str(changes)]
            if url:
                command += ["--database-url", url]
            if args.profile:
                command += ["--profile", str(args.profile.resolve())]
            log(f"{backend}: starting (load average {os.getloadavg()[0]:.2f}) ...")
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
