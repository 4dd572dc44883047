"""``idgov worker``: a provisioning worker process (run as many as the targets can take)."""

from __future__ import annotations

import logging
import signal
import threading
from dataclasses import replace
from typing import Annotated

import typer

from idgov.cli_runtime import cli_runtime
from idgov.config import get_settings
from idgov.provisioning.engine import EngineConfig
from idgov.provisioning.worker import Worker


def worker(
    poll_seconds: Annotated[float, typer.Option(min=0.01, help="Wait when idle")] = 1.0,
    batch_size: Annotated[int | None, typer.Option(min=1, max=500,
                                                   help="Operations per claim")] = None,
    lease_seconds: Annotated[int | None, typer.Option(
        min=1, help="How long a claimed operation is ours before another worker may take "
        "it; longer than any single connector call")] = None,
    worker_id: Annotated[str | None, typer.Option(help="Default: host:pid:random")] = None,
) -> None:
    """Claim and run provisioning operations until SIGTERM or SIGINT (then finish the
    batch in hand and exit)."""
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = get_settings()
    config = EngineConfig.from_settings(settings)
    if batch_size is not None:
        config = replace(config, batch_size=batch_size)
    if lease_seconds is not None:
        config = replace(config, lease_seconds=lease_seconds)
    stop_event = threading.Event()

    def on_signal(_signum: int, _frame: object) -> None:
        stop_event.set()

    with cli_runtime(1, settings=settings) as runtime:
        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        Worker(runtime.session_factory, settings, runtime.clock, worker_id,
               config=config).run_forever(stop_event, poll_seconds)


def register(app: typer.Typer) -> None:
    """Add ``worker`` to the ``idgov`` command."""
    app.command("worker")(worker)
