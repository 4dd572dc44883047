"""LDAP provisioning through the engine and the connector, beside ldapmodify, and
reconciliation of the result.

    python benchmarks/ldap_provisioning.py [--quick] [--accounts N] [--groups G]
        [--database-url URL] [--workers W] [--batch-size B]

Two throwaway OpenLDAP directories (tests/slapd.py: mdb with dbnosync, memberOf and
referential-integrity overlays) are started side by side, each with G groups (default 40).

- baseline: one LDIF of N adds (inetOrgPerson) and 2*N modifies (``add: member``, each
  account to 2 of the G groups), applied to the first directory by ``ldapmodify -f``: one
  LDAP operation per record, one connection, no database. baseline_ops_per_s = 3N / time.
- engine: the same 3N operations as ProvisioningOperation rows (a create_account, with the
  login name reserved as the product reserves it, and two grants per identity, in order),
  bulk-inserted into a migrated database (a temporary SQLite file, or with
  ``--database-url postgresql+psycopg://...`` a scratch database beside it, dropped
  afterwards) with the identities, the 40 entitlements and the assignments behind them;
  then ``idgov.provisioning.engine.run_until_idle`` (W worker threads, each claiming and
  executing with its own worker id, one shared connector cache) runs them into the second
  directory through the LDAP connector, with sessions that seal the audit trail as the
  product's do (hash chain, one signature per transaction). engine_ops_per_s = succeeded
  operations / time, everything included: claims, account naming, one audited attempt per
  operation, outcomes, accounts recorded.

  What the engine does in production and so here (see the engine's docstring): a claim
  takes up to ``--batch-size`` operations (default 1000; the product's setting
  ``provisioning_batch_size``), at most one per identity and application; their calls run
  on up to ``min(parallel_calls, pool size)`` threads (``--pool-size``, default 4); grants
  of a claim to the same group go out as one LDAP modify adding all those members when the
  connector has ``grant_many`` (each operation keeps its own outcome and audited attempt;
  a refused modify is sent again one member at a time); one transaction records the
  claim's outcomes. The LDIF baseline sends one modify per membership.
- connector_direct_ops_per_s (for reference): the same 3N operations straight through the
  connector into a third directory, 4 threads sharing one connector (its pool), no database:
  the ceiling the engine works under.
- reconcile_10k_s: ``idgov.reconciliation.service.reconcile`` of the application (read-only:
  paged listing of the N accounts and the G groups with their members, compared with the
  assignments), timed end to end.

Default N = 10,000 (30,000 LDAP operations); ``--quick``: N = 500. The last line printed is
one JSON object with engine_ops_per_s, baseline_ops_per_s, ratio, reconcile_10k_s and the
details (goal: ratio >= 0.5, reconcile_10k_s <= 10).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sqlalchemy import Engine, Table, func, insert, select  # noqa: E402
from sqlalchemy.orm import Session, sessionmaker  # noqa: E402
from support.databases import scratch_database  # noqa: E402 - benchmarks/support, beside this script

from connectors.registry import build  # noqa: E402
from idgov.applications.crypto import CredentialCipher  # noqa: E402
from idgov.audit.service import install_sealer  # noqa: E402
from idgov.audit.signing import generate_signer  # noqa: E402
from idgov.clock import SystemClock  # noqa: E402
from idgov.config import Settings  # noqa: E402
from idgov.db.migrate import upgrade  # noqa: E402
from idgov.db.session import make_session_factory, unit_of_work  # noqa: E402
from idgov.models.application import Application  # noqa: E402
from idgov.models.assignment import Assignment  # noqa: E402
from idgov.models.catalog import Entitlement  # noqa: E402
from idgov.models.identity import Identity  # noqa: E402
from idgov.models.provisioning import ProvisioningOperation  # noqa: E402
from idgov.provisioning.connections import ConnectorCache  # noqa: E402
from idgov.provisioning.engine import RunStats, run_until_idle  # noqa: E402
from idgov.reconciliation.service import reconcile  # noqa: E402
from idgov.types import Actor  # noqa: E402
from tests.slapd import Slapd  # noqa: E402

BATCH = 5_000
SINCE = datetime(2026, 1, 1, tzinfo=UTC)


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _bulk(engine: Engine, table: Table, rows: list[dict[str, Any]]) -> None:
    with engine.begin() as conn:
        for start in range(0, len(rows), BATCH):
            conn.execute(insert(table), rows[start:start + BATCH])


def _people(accounts: int, groups: int, seed: int = 5) -> list[dict[str, Any]]:
    """Who gets which 2 groups (the same plan for both runs)."""
    rng = random.Random(seed)
    return [{"n": n, "uid": f"u{n:06d}", "groups": rng.sample(range(groups), 2)}
            for n in range(accounts)]


def _attributes(n: int) -> dict[str, str]:
    """The attributes the application's account mapping renders for person ``n``."""
    return {"cn": f"Bench Person{n}", "sn": f"Person{n}", "givenName": "Bench",
            "mail": f"bench{n}@example.org", "departmentNumber": f"Dept{n % 25}",
            "employeeNumber": f"E{n:06d}"}


def _seed_groups(server: Slapd, groups: int) -> list[str]:
    return [server.add_group(f"grp{g:02d}") for g in range(groups)]


# ---- baseline ------------------------------------------------------------------------------

def baseline(server: Slapd, plan: list[dict[str, Any]], group_dns: list[str],
             folder: Path) -> dict[str, Any]:
    records: list[str] = []
    for person in plan:
        dn = f"uid={person['uid']},{server.people}"
        lines = [f"dn: {dn}", "changetype: add", "objectClass: inetOrgPerson",
                 "objectClass: organizationalPerson", "objectClass: person", "objectClass: top",
                 f"uid: {person['uid']}"]
        lines += [f"{k}: {v}" for k, v in _attributes(person["n"]).items()]
        records.append("\n".join(lines) + "\n")
    for person in plan:  # memberships after the accounts, as the engine orders them
        dn = f"uid={person['uid']},{server.people}"
        for g in person["groups"]:
            records.append(f"dn: {group_dns[g]}\nchangetype: modify\nadd: member\n"
                           f"member: {dn}\n-\n")
    ldif = folder / "baseline.ldif"
    ldif.write_text("\n".join(records))
    started = time.perf_counter()
    server.ldapmodify_file(ldif)
    elapsed = time.perf_counter() - started
    return {"baseline_ops": len(records), "baseline_s": round(elapsed, 3),
            "baseline_ops_per_s": round(len(records) / elapsed, 1)}


# ---- the connector alone ---------------------------------------------------------------------

def connector_direct(server: Slapd, plan: list[dict[str, Any]], group_dns: list[str],
                     threads: int) -> dict[str, Any]:
    """The same operations straight through the LDAP connector (no database, no engine),
    ``threads`` callers sharing one connector: what the engine could reach at best."""
    from connectors.base import AccountSpec

    connector = build("ldap", {
        "url": server.url, "bind_dn": server.rootdn, "users_ou": server.people,
        "groups_ou": server.groups, "disabled_ou": server.disabled,
        "pool_size": threads}, {"bind_password": server.rootpw})
    errors: list[BaseException] = []

    def work(part: list[dict[str, Any]]) -> None:
        try:
            for person in part:
                ref = connector.create_account(AccountSpec(username=person["uid"],
                                                           attributes=_attributes(person["n"])))
                for g in person["groups"]:
                    connector.grant(ref, group_dns[g])
        except BaseException as exc:  # reported below
            errors.append(exc)

    started = time.perf_counter()
    workers = [threading.Thread(target=work, args=(plan[t::threads],)) for t in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    elapsed = time.perf_counter() - started
    connector.close()
    if errors:
        raise errors[0]
    return {"connector_direct_threads": threads, "connector_direct_s": round(elapsed, 3),
            "connector_direct_ops_per_s": round(3 * len(plan) / elapsed, 1)}


# ---- the engine ----------------------------------------------------------------------------

def populate(engine: Engine, settings: Settings, server: Slapd, plan: list[dict[str, Any]],
             group_dns: list[str], pool_size: int) -> uuid.UUID:
    """The application, its entitlements, the identities, their assignments and the 3N
    pending operations; returns the application id."""
    rng = random.Random(9)

    def new_id() -> uuid.UUID:
        return uuid.UUID(int=rng.getrandbits(128), version=4)

    stamp = {"created_at": SINCE, "updated_at": SINCE}
    cipher = CredentialCipher.from_file(settings.secret_key_path)
    app_id = new_id()
    app_settings = {
        "url": server.url, "bind_dn": server.rootdn, "base_dn": server.suffix,
        "users_ou": "ou=people", "groups_ou": "ou=groups", "disabled_ou": "ou=disabled",
        "disable_method": "move", "pool_size": pool_size, "timeout_seconds": 10,
        "account_mapping": {"username": "u{employee_id[1:]}"},
    }
    _bulk(engine, Application.__table__, [{  # type: ignore[arg-type]
        "id": app_id, "name": "bench-ldap", "connector_kind": "ldap", "settings": app_settings,
        "credentials_encrypted": cipher.encrypt({"bind_password": server.rootpw}),
        "risk": "medium", "remove_unassigned_access": False, **stamp}])
    ent_ids = [new_id() for _ in group_dns]
    _bulk(engine, Entitlement.__table__, [{  # type: ignore[arg-type]
        "id": ent_ids[g], "application_id": app_id, "kind": "group", "native_id": dn,
        "name": f"grp{g:02d}", "risk": "low", "privileged": False,
        "data_classification": "none", "requestable": True, **stamp}
        for g, dn in enumerate(group_dns)])
    identities, assignments, operations = [], [], []
    ordinal = time.time_ns()
    for person in plan:
        n, identity_id = person["n"], new_id()
        identities.append({"id": identity_id, "employee_id": f"E{n:06d}",
                           "given_name": "Bench", "family_name": f"Person{n}",
                           "display_name": f"Bench Person{n}", "email": f"bench{n}@example.org",
                           "department": f"Dept{n % 25}", "employment_type": "employee",
                           "lifecycle_state": "active", "attributes": {}, **stamp})
        common = {"identity_id": identity_id, "application_id": app_id, "state": "pending",
                  "cause": "assignment", "attempts": 0, "detail": {}, **stamp}
        # the login name is reserved when the creation is recorded, as
        # accounts.ensure_account_operations does
        operations.append({"id": new_id(), "idempotency_key": f"bench:{n}:create",
                           "entitlement_id": None, "assignment_id": None,
                           "action": "create_account",
                           "ordinal": ordinal, "cause_id": f"bench-{n}",
                           **common, "detail": {"username": person["uid"]}})
        ordinal += 1
        for g in person["groups"]:
            assignment_id = new_id()
            assignments.append({"id": assignment_id, "identity_id": identity_id,
                                "role_id": None, "entitlement_id": ent_ids[g],
                                "source": "admin", "reason": "benchmark",
                                "valid_from": SINCE, **stamp})
            operations.append({"id": new_id(), "idempotency_key": f"bench:{n}:grant:{g}",
                               "entitlement_id": ent_ids[g], "action": "grant",
                               "ordinal": ordinal, "cause_id": str(assignment_id),
                               "assignment_id": assignment_id, **common})
            ordinal += 1
    _bulk(engine, Identity.__table__, identities)  # type: ignore[arg-type]
    _bulk(engine, Assignment.__table__, assignments)  # type: ignore[arg-type]
    _bulk(engine, ProvisioningOperation.__table__, operations)  # type: ignore[arg-type]
    return app_id


def _sealed_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions as the product opens them (idgov.runtime.open_runtime): audit events are
    chained and each transaction's block signed at commit."""
    factory = make_session_factory(engine)
    install_sealer(factory, generate_signer())
    return factory


def run_engine(engine: Engine, settings: Settings, workers: int,
               batch_size: int | None) -> dict[str, Any]:
    factory = _sealed_factory(engine)
    cache = ConnectorCache()
    clock = SystemClock()
    stats: list[RunStats] = []
    errors: list[BaseException] = []
    config = None
    if batch_size is not None:
        from idgov.provisioning.engine import EngineConfig
        config = EngineConfig(batch_size=batch_size)

    def work(worker: int) -> None:
        try:
            stats.append(run_until_idle(factory, settings=settings, clock=clock,
                                        worker_id=f"bench-{worker}", max_rounds=10**9,
                                        connectors=cache, config=config))
        except BaseException as exc:  # reported below
            errors.append(exc)

    started = time.perf_counter()
    if workers == 1:
        work(0)  # in this thread (a profiler sees it)
    else:
        threads = [threading.Thread(target=work, args=(w,)) for w in range(workers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    elapsed = time.perf_counter() - started
    cache.close()
    if errors:
        raise errors[0]
    with unit_of_work(factory) as session:
        states = dict(session.execute(select(ProvisioningOperation.state, func.count())
                                      .group_by(ProvisioningOperation.state)).all())
        # (state, count) rows
    succeeded = int(states.get("succeeded", 0))
    return {"engine_s": round(elapsed, 3), "engine_states": {k: int(v) for k, v in states.items()},
            "engine_ops_per_s": round(succeeded / elapsed, 1),
            "engine_rounds": sum(s.rounds for s in stats)}


def run_reconcile(engine: Engine, settings: Settings, app_id: uuid.UUID,
                  server: Slapd) -> dict[str, Any]:
    factory = _sealed_factory(engine)
    clock = SystemClock()
    actor = Actor(type="system", id=None, name="benchmark")
    with unit_of_work(factory) as session:
        application = session.get(Application, app_id)
        assert application is not None
        connector_settings = dict(application.settings)
    connector = build("ldap", connector_settings, {"bind_password": server.rootpw})
    try:
        started = time.perf_counter()
        with unit_of_work(factory) as session:
            run = reconcile(session, application_id=app_id, connector=connector,
                            remediate=False, actor=actor, clock=clock)
            state = run.state
            counts = getattr(run, "counts", None)
        elapsed = time.perf_counter() - started
    finally:
        connector.close()
    return {"reconcile_s": round(elapsed, 3), "reconcile_state": state,
            "reconcile_counts": counts}


def _directory_counts(server: Slapd) -> dict[str, int]:
    people = server.ldapsearch(server.people, "(objectClass=inetOrgPerson)", ["1.1"])
    groups = server.ldapsearch(server.groups, "(objectClass=groupOfNames)", ["member"])
    members = sum(len([m for m in g.get("member") if m != g.dn]) for g in groups)
    return {"accounts": len(people), "memberships": members}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="500 accounts instead of 10,000")
    parser.add_argument("--accounts", type=int)
    parser.add_argument("--groups", type=int, default=40)
    parser.add_argument("--database-url", help="SQLAlchemy URL (default: a temporary SQLite "
                        "file; PostgreSQL: a scratch database beside it, dropped afterwards)")
    parser.add_argument("--workers", type=int, default=1,
                        help="engine worker threads (default 1)")
    parser.add_argument("--batch-size", type=int, default=1000,
                        help="operations per claim (default 1000)")
    parser.add_argument("--pool-size", type=int, help="the application's LDAP connection "
                        "pool (default: max(4, workers)); the engine runs up to that many "
                        "calls of a batch at once")
    parser.add_argument("--direct-threads", type=int, default=4,
                        help="callers of the connector-alone measurement (default 4)")
    args = parser.parse_args(argv)
    accounts = args.accounts or (500 if args.quick else 10_000)
    plan = _people(accounts, args.groups)
    report: dict[str, Any] = {"benchmark": "ldap_provisioning", "accounts": accounts,
                              "groups": args.groups, "ldap_operations": 3 * accounts,
                              "workers": args.workers, "batch_size": args.batch_size}
    with tempfile.TemporaryDirectory(prefix="idgov-ldap-bench-") as tmp:
        folder = Path(tmp)
        base_server = Slapd(folder / "baseline-slapd")
        engine_server = Slapd(folder / "engine-slapd")
        base_server.start()
        engine_server.start()
        try:
            _log(f"baseline: ldapmodify of {3 * accounts} operations ...")
            report.update(baseline(base_server, plan, _seed_groups(base_server, args.groups),
                                   folder))
            report["baseline_directory"] = _directory_counts(base_server)
            base_server.stop()

            direct_server = Slapd(folder / "direct-slapd")
            direct_server.start()
            try:
                _log(f"connector alone: {3 * accounts} operations ...")
                report.update(connector_direct(direct_server, plan,
                                               _seed_groups(direct_server, args.groups),
                                               threads=args.direct_threads))
            finally:
                direct_server.stop()

            group_dns = _seed_groups(engine_server, args.groups)
            settings = Settings(var_dir=folder / "var", database_url=args.database_url)
            settings.var_dir.mkdir(parents=True, exist_ok=True)
            with scratch_database(args.database_url, folder) as engine:
                report["backend"] = engine.dialect.name
                upgrade(engine)
                _log("engine: populating the database ...")
                app_id = populate(engine, settings, engine_server, plan, group_dns,
                                  pool_size=args.pool_size or max(4, args.workers))
                _log(f"engine: running {3 * accounts} operations ...")
                report.update(run_engine(engine, settings, args.workers, args.batch_size))
                report["engine_directory"] = _directory_counts(engine_server)
                _log(f"reconciling {accounts} accounts ...")
                report.update(run_reconcile(engine, settings, app_id, engine_server))
        finally:
            base_server.stop()
            engine_server.stop()
    report["ratio"] = round(report["engine_ops_per_s"] / report["baseline_ops_per_s"], 3)
    report["reconcile_10k_s"] = report["reconcile_s"] if accounts == 10_000 else round(
        report["reconcile_s"] * 10_000 / accounts, 3)
    report["reconcile_10k_s_extrapolated"] = accounts != 10_000
    report["goals"] = {"ratio_at_least_0_5": report["ratio"] >= 0.5,
                       "reconcile_10k_at_most_10_s": report["reconcile_10k_s"] <= 10}
    print(json.dumps(report, default=str))


if __name__ == "__main__":
    main()
