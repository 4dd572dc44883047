"""A separate OS process that commits audit-writing transactions (used by the two-writer test).

Usage: python writer_process.py DATABASE_URL PRIVATE_KEY NAME TRANSACTIONS EVENTS_PER_TX

It connects, prints ``ready``, waits for one line on stdin (so that several writers start
together), commits its transactions through the real sealer, and prints ``done``.
"""

from __future__ import annotations

import sys
from pathlib import Path

from sqlalchemy import text

from idgov.audit.service import install_sealer, record
from idgov.audit.signing import load_signer
from idgov.clock import SystemClock
from idgov.db.session import make_engine, make_session_factory, unit_of_work
from idgov.types import Actor


def main() -> None:
    url, key_path, name, transactions, per_tx = sys.argv[1:6]
    engine = make_engine(url)
    factory = make_session_factory(engine)
    install_sealer(factory, load_signer(Path(key_path)))
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))
    print("ready", flush=True)
    sys.stdin.readline()
    clock = SystemClock()
    actor = Actor.system(name)
    for t in range(int(transactions)):
        with unit_of_work(factory) as session:
            for e in range(int(per_tx)):
                record(session, actor=actor, action="writer.step", object_type="writer",
                       object_id=f"{name}-{t}-{e}", clock=clock, context={"writer": name})
    engine.dispose()
    print("done", flush=True)


if __name__ == "__main__":
    main()
