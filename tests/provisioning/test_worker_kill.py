"""Several real worker processes against PostgreSQL: no operation runs twice at once, and a
worker killed with SIGKILL in the middle of an operation loses nothing (its lease runs out
and another worker runs the operation again)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from idgov.db.session import unit_of_work
from idgov.models.application import Account, Application
from idgov.models.provisioning import ProvisioningOperation
from tests.catalog.factories import Api, add_identity

ROOT = Path(__file__).resolve().parents[2]
SLOW = "tslow"  # the account whose first creation hangs until the worker is killed
PEOPLE = 24
WORKERS = 3
LEASE_SECONDS = 3
DEADLINE_SECONDS = 120


@dataclass
class CallLog:
    """The target's state and every call it received, in the test process."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    calls: list[dict[str, Any]] = field(default_factory=list)
    accounts: set[str] = field(default_factory=set)
    members: set[str] = field(default_factory=set)
    slow_started: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    in_flight: dict[str, int] = field(default_factory=dict)
    overlaps: list[str] = field(default_factory=list)


def _server(log: CallLog) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_args: Any) -> None:
            """Quiet."""

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            key = f"{body['method']}:{body.get('key')}"
            with log.lock:
                call = {"key": key, "pid": body["pid"], "at": time.monotonic()}
                log.calls.append(call)
                if log.in_flight.get(key):
                    log.overlaps.append(key)
                log.in_flight[key] = log.in_flight.get(key, 0) + 1
                first_slow = (body["method"] == "create_account" and body["key"] == SLOW
                              and sum(1 for c in log.calls if c["key"] == key) == 1)
            try:
                if first_slow:
                    log.slow_started.set()
                    log.release.wait(DEADLINE_SECONDS)
                answer: dict[str, Any] = {}
                with log.lock:
                    if body["method"] == "create_account":
                        log.accounts.add(body["key"])
                        answer = {"native_id": f"uid={body['key']}"}
                    elif body["method"] == "grant":
                        log.members.add(body["key"])
                data = json.dumps(answer).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except OSError:
                pass  # the worker that asked is dead
            finally:
                with log.lock:
                    log.in_flight[key] -= 1

    return ThreadingHTTPServer(("127.0.0.1", 0), Handler)


@pytest.fixture
def target() -> Iterator[tuple[str, CallLog]]:
    log = CallLog()
    server = _server(log)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/", log
    log.release.set()
    server.shutdown()
    server.server_close()


def _start_workers(db_url: str, tmp_path: Path, count: int) -> list[subprocess.Popen[bytes]]:
    env = {**os.environ, "IDGOV_DATABASE_URL": db_url, "IDGOV_VAR_DIR": str(tmp_path / "var"),
           "PYTHONPATH": str(ROOT)}
    env.pop("IDGOV_SETTINGS_FILE", None)
    procs = []
    for i in range(count):
        with (tmp_path / f"worker{i}.log").open("wb") as out:
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "tests.provisioning.kill_worker",
                 "--lease-seconds", str(LEASE_SECONDS)],
                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT))
    return procs


def _states(factory: sessionmaker[Session]) -> dict[str, int]:
    with unit_of_work(factory) as session:
        return {s: n for s, n in session.execute(
            select(ProvisioningOperation.state, func.count())
            .group_by(ProvisioningOperation.state))}


@pytest.mark.postgres_only
def test_a_worker_killed_mid_operation_loses_nothing_and_nothing_runs_twice(
        db_url: str, tmp_path: Path, client: TestClient, admin_headers: dict[str, str],
        session_factory: sessionmaker[Session], target: tuple[str, CallLog]) -> None:
    url, log = target
    with unit_of_work(session_factory) as session:
        app = Application(name="Shared target", connector_kind="memory",
                          settings={"url": url})
        session.add(app)
        session.flush()
        application_id = str(app.id)
    api = Api(client, admin_headers, application_id)
    vpn = api.entitlement("VPN")
    people = [add_identity(session_factory, f"P{i:03d}") for i in range(PEOPLE - 1)]
    people.append(add_identity(session_factory, "SLOW"))
    for person in people:
        api.ok("POST", "/assignments", 201,
               json={"identity_id": person, "entitlement_id": vpn, "reason": "kill test"})
    assert _states(session_factory) == {"pending": 2 * PEOPLE}

    procs = _start_workers(db_url, tmp_path, WORKERS)
    try:
        assert log.slow_started.wait(DEADLINE_SECONDS), "no worker reached the slow call"
        with log.lock:
            victim = next(c["pid"] for c in log.calls if c["key"] == f"create_account:{SLOW}")
        assert victim in {p.pid for p in procs}
        os.kill(victim, signal.SIGKILL)
        killed_at = time.monotonic()
        next(p for p in procs if p.pid == victim).wait(10)
        log.release.set()  # the hung request ends; its answer goes nowhere

        deadline = time.monotonic() + DEADLINE_SECONDS
        while _states(session_factory) != {"succeeded": 2 * PEOPLE}:
            assert time.monotonic() < deadline, _states(session_factory)
            time.sleep(0.1)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in procs:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)

    usernames = {f"tp{i:03d}" for i in range(PEOPLE - 1)} | {SLOW}
    assert log.accounts == usernames  # none lost
    assert log.members == {f"uid={u}|cn=VPN" for u in usernames}
    with log.lock:
        counts: dict[str, list[dict[str, Any]]] = {}
        for call in log.calls:
            counts.setdefault(call["key"], []).append(call)
    slow_key = f"create_account:{SLOW}"
    # Every operation was sent once, but the killed one: twice, the second time by
    # another worker, after the kill.
    assert {k: len(v) for k, v in counts.items() if len(v) != 1} == {slow_key: 2}
    assert len(counts) == 2 * PEOPLE
    first, second = counts[slow_key]
    assert (first["pid"], second["pid"] != victim) == (victim, True)
    assert second["at"] > killed_at
    assert log.overlaps == []  # never the same operation at once in two workers
    assert len({c["pid"] for c in log.calls}) >= 2  # the work was shared
    with unit_of_work(session_factory) as session:
        assert session.scalar(select(func.count()).select_from(Account)) == PEOPLE
        slow_op = session.scalars(select(ProvisioningOperation).where(
            ProvisioningOperation.action == "create_account",
            ProvisioningOperation.identity_id == uuid.UUID(people[-1]))).one()
        assert slow_op.attempts == 2
        assert slow_op.claimed_by != f"kill-test:{victim}"
