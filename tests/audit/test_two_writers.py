"""Two OS processes sealing audit events into one PostgreSQL chain at the same time."""

from __future__ import annotations

import itertools
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from idgov.audit.signing import ensure_keys, load_verifier
from idgov.audit.verify import verify_chain
from idgov.clock import SystemClock

WRITER = Path(__file__).with_name("writer_process.py")
TRANSACTIONS = 200
EVENTS_PER_TX = 2


@pytest.mark.postgres_only
@pytest.mark.slow
def test_two_processes_writing_at_once_build_one_contiguous_verified_chain(
        db_url: str, engine: Engine, tmp_path: Path) -> None:
    key, pub = tmp_path / "audit-signing.key", tmp_path / "audit-signing.pub"
    ensure_keys(key, pub)
    writers = [
        subprocess.Popen([sys.executable, str(WRITER), db_url, str(key), name,
                          str(TRANSACTIONS), str(EVENTS_PER_TX)],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                         cwd=Path(__file__).parents[2])
        for name in ("w1", "w2")
    ]
    try:
        for proc in writers:
            assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        for proc in writers:  # both are connected: start them together
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
        outputs = [proc.communicate(timeout=240)[0] for proc in writers]
    finally:
        for proc in writers:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert [p.returncode for p in writers] == [0, 0]
    assert all(out.strip() == "done" for out in outputs)

    with engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT seq, prev_hash, hash, actor_name FROM audit_events ORDER BY seq")).all()
        result = verify_chain(conn, load_verifier(pub), now=SystemClock().now())
    expected = 2 * TRANSACTIONS * EVENTS_PER_TX
    assert len(rows) == expected
    assert [r.seq for r in rows] == list(range(1, expected + 1))
    # One chain: every event links to the one before it, and no two share a predecessor.
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(rows))
    assert len({r.prev_hash for r in rows}) == expected
    assert result.ok, result.problems
    assert result.signed_blocks == 2 * TRANSACTIONS
    # The writers really overlapped: their blocks alternate in the chain.
    switches = sum(1 for a, b in itertools.pairwise(rows)
                   if a.actor_name != b.actor_name)
    assert switches > 2, switches
