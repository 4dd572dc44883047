"""`idgov serve`: a real uvicorn process on the port IDGOV_PORT names, using init's token."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.setup.conftest import RunCli


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_until_up(proc: subprocess.Popen[bytes], url: str, log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text()
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.05)  # the process is still starting; poll again
    raise AssertionError(f"idgov serve did not answer: {log.read_text()}")


def test_serve_listens_on_idgov_port_and_accepts_the_init_token(
        var_dir: Path, run_cli: RunCli, tmp_path: Path) -> None:
    run_cli("init")
    port = _free_port()
    env = {**os.environ, "IDGOV_VAR_DIR": str(var_dir), "IDGOV_PORT": str(port)}
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-c", "from idgov.cli import main; main()",
                                 "serve"], env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_until_up(proc, f"{base}/healthz", log)
        token = (var_dir / "admin-token").read_text().strip()
        resp = httpx.get(f"{base}/assignments", headers={"Authorization": f"Bearer {token}"})
        assert resp.status_code == 200, resp.text
        assert resp.json() == {"items": [], "next_cursor": None}
        assert httpx.get(f"{base}/openapi.json").json()["info"]["title"] == "idgov"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
