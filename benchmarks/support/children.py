"""What every benchmark script shares: logging to stderr, resetting the peak RSS, finding
PostgreSQL, and running each backend in a child process of its own (so that one backend's
memory and caches do not colour the other's), collecting the JSON line each child prints."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def reset_peak() -> bool:
    """Reset VmHWM to the current RSS (Linux: write 5 to /proc/self/clear_refs)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def pg_url(given: str | None) -> str | None:
    """The PostgreSQL URL to run against: given, IDGOV_BENCH_DATABASE_URL, else the local
    server when it answers; None when there is none."""
    url = given or os.environ.get("IDGOV_BENCH_DATABASE_URL")
    if url:
        return url
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=1):
            return DEFAULT_PG
    except OSError:
        return None


def run_children(script: str, backends: Sequence[str], database_url: str | None,
                 args: Sequence[str]) -> dict[str, dict[str, Any] | None]:
    """Run ``script --child BACKEND ARGS`` for each backend (PostgreSQL skipped, None, when
    no server answers) and return the JSON object each printed last."""
    results: dict[str, dict[str, Any] | None] = {}
    for backend in backends:
        url = pg_url(database_url) if backend == "postgresql" else None
        if backend == "postgresql" and url is None:
            log("postgresql: no server (set IDGOV_BENCH_DATABASE_URL): skipped")
            results[backend] = None
            continue
        command = [sys.executable, str(Path(script).resolve()), "--child", backend, *args]
        if url:
            command += ["--database-url", url]
        log(f"{backend}: starting (load average {os.getloadavg()[0]:.2f}) ...")
        done = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=False)
        if done.returncode != 0:
            raise SystemExit(f"{backend}: the benchmark failed (exit {done.returncode})")
        results[backend] = json.loads(done.stdout.strip().splitlines()[-1])
    return results
