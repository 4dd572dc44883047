"""A provisioning worker process for tests/provisioning/test_worker_kill.py.

``python -m tests.provisioning.kill_worker --lease-seconds 3`` runs a real
:class:`idgov.provisioning.worker.Worker` against ``IDGOV_DATABASE_URL``, with the connector
kind "memory" replaced by :class:`CountingConnector`: a target that lives in the test
process, behind a small HTTP server, so that every worker process sees the same target and
the test sees every call.
"""

from __future__ import annotations

import argparse
import json
import os
import threading
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any

from connectors import registry
from connectors.base import AccountRef, AccountSpec
from connectors.errors import TargetUnavailable


class CountingConnector:
    """Creates accounts and grants memberships on the test's HTTP target."""

    kind = "memory"
    capabilities = frozenset({"create_account", "grant"})

    def __init__(self, settings: Mapping[str, Any], credentials: Mapping[str, Any]) -> None:
        self.url = str(settings["url"])
        if not self.url.startswith("http://127.0.0.1:"):
            raise ValueError("the test target is local HTTP only")

    def _post(self, body: dict[str, Any]) -> dict[str, Any]:
        data = json.dumps({**body, "pid": os.getpid()}).encode()
        request = urllib.request.Request(self.url, data=data, method="POST",  # noqa: S310
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310
                answer: dict[str, Any] = json.loads(response.read())
                return answer
        except (urllib.error.URLError, OSError) as error:
            raise TargetUnavailable(f"test target: {error}") from None

    def test_connection(self) -> None:
        self._post({"method": "test_connection"})

    def create_account(self, spec: AccountSpec) -> AccountRef:
        answer = self._post({"method": "create_account", "key": spec.username})
        return AccountRef(native_id=answer["native_id"], username=spec.username)

    def grant(self, ref: AccountRef, entitlement: str) -> None:
        self._post({"method": "grant", "key": f"{ref.native_id}|{entitlement}"})

    def close(self) -> None:
        """Nothing held."""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lease-seconds", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--poll-seconds", type=float, default=0.05)
    args = parser.parse_args()

    registry.register("memory", "tests.provisioning.kill_worker:CountingConnector")
    import idgov.requests.service  # noqa: F401  (the request lines' provisioning hook)
    from idgov.audit.signing import generate_signer
    from idgov.config import Settings
    from idgov.provisioning.engine import EngineConfig
    from idgov.provisioning.worker import Worker
    from idgov.runtime import open_runtime

    settings = Settings()
    runtime = open_runtime(settings, signer=generate_signer())
    config = EngineConfig(lease_seconds=args.lease_seconds, batch_size=args.batch_size)
    Worker(runtime.session_factory, settings, runtime.clock,
           worker_id=f"kill-test:{os.getpid()}", config=config).run_forever(
        threading.Event(), args.poll_seconds)


if __name__ == "__main__":
    main()
