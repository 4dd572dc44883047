"""Audit trail throughput: sealing transactions into the chain, then verifying the chain.

    python benchmarks/bench_audit.py [--quick] [--events N] [--per-tx K]

Writes N events as N/K transactions of K events each through the real service functions
(``record`` and the sealer installed on the session factory, one signed block per commit),
then verifies the whole chain with ``verify_chain``. Runs on a throwaway SQLite file, and on a
throwaway PostgreSQL database when ``IDGOV_BENCH_DATABASE_URL`` is set or 127.0.0.1:5432
answers. The last line printed is one JSON object with events/s per backend.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url

from idgov.audit.service import install_sealer, record
from idgov.audit.signing import Signer, Verifier, generate_signer
from idgov.audit.verify import verify_chain
from idgov.clock import SystemClock
from idgov.db.migrate import upgrade
from idgov.db.session import make_engine, make_session_factory, unit_of_work
from idgov.types import Actor

DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def _snapshot(n: int) -> dict[str, Any]:
    """About the size of a real before/after: an assignment's columns."""
    return {
        "id": str(uuid.UUID(int=n)), "identity_id": str(uuid.UUID(int=n * 7 + 1)),
        "role_id": str(uuid.UUID(int=n % 97 + 3)), "entitlement_id": None,
        "source": "request", "state": "active", "valid_from": "2026-01-15T09:00:00+00:00",
        "valid_to": None, "request_line": f"RITM-2026-{n:06d}", "reason": "approved",
    }


def bench(engine: Engine, *, events: int, per_tx: int) -> dict[str, Any]:
    """Seal ``events`` events in transactions of ``per_tx``; verify; return the rates."""
    signer = generate_signer()
    factory = make_session_factory(engine)
    install_sealer(factory, signer)
    clock = SystemClock()
    actor = Actor.system("bench")
    transactions = max(1, events // per_tx)
    started = time.perf_counter()
    n = 0
    for _ in range(transactions):
        with unit_of_work(factory) as session:
            for _ in range(per_tx):
                n += 1
                record(session, actor=actor, action="assignment.grant", object_type="assignment",
                       object_id=uuid.UUID(int=n), clock=clock, before=None,
                       after=_snapshot(n), context={"request": f"REQ-2026-{n:06d}"})
    write_s = time.perf_counter() - started
    started = time.perf_counter()
    with engine.connect() as conn:
        result = verify_chain(conn, _verifier(signer), now=clock.now())
    verify_s = time.perf_counter() - started
    if not result.ok or result.events != n:
        raise SystemExit(f"verification failed: {result.summary()}")
    return {
        "events": n, "transactions": transactions, "events_per_transaction": per_tx,
        "write_seconds": round(write_s, 3), "write_events_per_s": round(n / write_s),
        "verify_seconds": round(verify_s, 3), "verify_events_per_s": round(n / verify_s),
    }


def _verifier(signer: Signer) -> Verifier:
    return Verifier(keys={signer.key_id: signer.public_key})


def _pg_url() -> str | None:
    url = os.environ.get("IDGOV_BENCH_DATABASE_URL")
    if url:
        return url
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=1):
            return DEFAULT_PG
    except OSError:
        return None


def run_sqlite(events: int, per_tx: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="idgov-bench-") as folder:
        engine = make_engine(f"sqlite:///{Path(folder) / 'bench.db'}")
        try:
            upgrade(engine)
            return bench(engine, events=events, per_tx=per_tx)
        finally:
            engine.dispose()


def run_postgres(base_url: str, events: int, per_tx: int) -> dict[str, Any]:
    """In a scratch database beside ``base_url``'s, dropped afterwards."""
    name = f"idgov_bench_{uuid.uuid4().hex[:10]}"
    admin = make_engine(base_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine = make_engine(make_url(base_url).set(database=name).render_as_string(
        hide_password=False))
    try:
        upgrade(engine)
        return bench(engine, events=events, per_tx=per_tx)
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5,000 events instead of 100,000")
    parser.add_argument("--events", type=int, help="number of events to write")
    parser.add_argument("--per-tx", type=int, default=10, help="events per transaction")
    args = parser.parse_args(argv)
    events = args.events or (5_000 if args.quick else 100_000)
    report: dict[str, Any] = {"benchmark": "audit", "events": events, "per_tx": args.per_tx}
    print(f"sqlite: sealing {events} events ...", file=sys.stderr, flush=True)
    report["sqlite"] = run_sqlite(events, args.per_tx)
    pg = _pg_url()
    if pg is None:
        report["postgresql"] = None
    else:
        print(f"postgresql: sealing {events} events ...", file=sys.stderr, flush=True)
        report["postgresql"] = run_postgres(pg, events, args.per_tx)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
