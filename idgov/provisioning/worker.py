"""Workers: processes (``idgov worker``) or a thread of the embedded server that claim and
run provisioning operations until told to stop.

Any number of workers may run against PostgreSQL: claims never overlap (``FOR UPDATE SKIP
LOCKED``), and an operation of a worker that died is claimed again when its lease runs out.
A worker keeps going when the database is briefly unreachable (it logs and polls again).

With ``settings.periodic_jobs`` (the default), a worker also runs the periodic jobs
(:mod:`idgov.provisioning.periodic`: first aggregation, scheduled reconciliation, the request
sweep, mail delivery) at most once every :data:`PERIODIC_EVERY`, by its clock.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import threading
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy.orm import Session, sessionmaker

from idgov.clock import Clock
from idgov.config import Settings
from idgov.provisioning import engine, periodic
from idgov.provisioning.connections import ConnectorCache, RateLimiter
from idgov.runtime import Runtime

log = logging.getLogger(__name__)

PERIODIC_EVERY = timedelta(seconds=60)


def default_worker_id() -> str:
    """Unique among live workers: host, process, and a random suffix."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Worker:
    """Claims a batch, runs it, and again; ``run_forever`` until ``stop_event`` is set."""

    def __init__(self, session_factory: sessionmaker[Session], settings: Settings | None,
                 clock: Clock, worker_id: str | None = None, *,
                 config: engine.EngineConfig | None = None, rng: random.Random | None = None,
                 limiter: RateLimiter | None = None) -> None:
        self.session_factory = session_factory
        self.settings = settings
        self.clock = clock
        self.worker_id = worker_id or default_worker_id()
        self.config = config or engine.EngineConfig.from_settings(settings)
        self.rng = rng
        self.limiter = limiter
        self.connectors = ConnectorCache()
        self._periodic_at: datetime | None = None

    def run_once(self) -> int:
        """Claim one batch and run it; the number of operations run (0: nothing was due)."""
        ids = engine.claim(self.session_factory, worker_id=self.worker_id, clock=self.clock,
                           limit=self.config.batch_size, lease_seconds=self.config.lease_seconds,
                           breaker_cooldown_seconds=self.config.breaker_cooldown_seconds)
        if ids:
            engine.execute_batch(self.session_factory, operation_ids=ids,
                                 worker_id=self.worker_id, settings=self.settings,
                                 clock=self.clock, connectors=self.connectors, rng=self.rng,
                                 limiter=self.limiter, config=self.config)
        return len(ids)

    def run_periodic(self) -> dict[str, int] | None:
        """Run the due periodic jobs when ``settings.periodic_jobs`` is on and they last ran
        (in this worker) :data:`PERIODIC_EVERY` ago or more; what they did, or None when
        it was not their time."""
        if self.settings is None or not self.settings.periodic_jobs:
            return None
        now = self.clock.now()
        if self._periodic_at is not None and now - self._periodic_at < PERIODIC_EVERY:
            return None
        self._periodic_at = now
        return periodic.run_due_jobs(self.session_factory, settings=self.settings,
                                     clock=self.clock)

    def run_forever(self, stop_event: threading.Event, poll_seconds: float = 1.0) -> None:
        """Run batches back to back while there is work; poll every ``poll_seconds`` when
        idle or after an error. Returns once ``stop_event`` is set (after the batch in hand)."""
        log.info("provisioning worker %s started", self.worker_id)
        try:
            while not stop_event.is_set():
                try:
                    self.run_periodic()
                except Exception as error:
                    log.error("provisioning worker %s: periodic jobs failed: %s",
                              self.worker_id, type(error).__name__)
                try:
                    done = self.run_once()
                except Exception:
                    log.exception("provisioning worker %s: batch failed; polling again",
                                  self.worker_id)
                    done = 0
                if done == 0:
                    stop_event.wait(poll_seconds)
        finally:
            self.connectors.close()
            log.info("provisioning worker %s stopped", self.worker_id)


def start_embedded_worker(runtime: Runtime, *, poll_seconds: float = 1.0) -> Callable[[], None]:
    """Start one worker thread (daemon) in this process; returns the function that stops it
    and waits for it to finish its batch."""
    worker = Worker(runtime.session_factory, runtime.settings, runtime.clock,
                    worker_id=f"embedded:{default_worker_id()}")
    stop_event = threading.Event()
    thread = threading.Thread(target=worker.run_forever, args=(stop_event, poll_seconds),
                              name="idgov-provisioning-worker", daemon=True)
    thread.start()

    def stop() -> None:
        stop_event.set()
        thread.join(timeout=60)

    return stop
