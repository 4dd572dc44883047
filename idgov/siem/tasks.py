"""The ``siem.syslog`` periodic job: feed each enabled sink the sealed trail after its cursor.

:func:`register_jobs` (called by the composition roots at start) registers it with the
workers (:func:`idgov.provisioning.periodic.register_job`), every :data:`EVERY`.

For each enabled sink, in turn and independently (one that fails never stops the others):

1. read at most :data:`BATCH_SIZE` sealed events after ``cursor_seq`` (a short read-only
   transaction);
2. format them as RFC 5424 messages, octet-counted, and write the whole batch to the
   receiver over one TCP (or TLS) connection kept for the run (``sendall``);
3. in a transaction of its own, move ``cursor_seq`` to the batch's last seq, set
   ``last_sent_at`` and clear ``last_error``: only if the cursor is still where step 1 read
   it (an administrator may have moved it meanwhile; then the run stops and the next one
   starts from the new cursor);
4. go on while more events wait, at most :data:`MAX_BATCHES` batches a run (the next run
   continues from the cursor).

Delivery guarantees. The cursor is persisted after every batch, so a restart (of the worker
or of the receiver) resumes after the last batch written: nothing is lost, nothing already
acknowledged is sent again. One narrow window remains: a crash after a batch was written but
before its cursor committed sends that batch again at the next run. Every message carries
the event's ``seq`` (and ``id``) in its structured data, and seqs are consecutive per
sink, so a receiver drops a duplicate by keeping the highest seq it has stored and ignoring
messages at or below it. Plain syslog over TCP has no acknowledgement: "written" means the
local TCP/TLS stack took every byte; a receiver that dies with data in its socket buffer
cannot be detected by RFC 6587/5425 framing (RELP would).

A receiver that is down or refuses the connection (or the TLS handshake) sets the sink's
``last_error`` (what failed and why: no secrets, a sink holds none) and leaves the cursor;
the next run tries again. On PostgreSQL each sink is fed under a transaction-scoped advisory
lock taken without waiting, so two workers never feed one sink at once.

The cursor's movement is delivery bookkeeping, like a mail outbox, and is not audited: an
audit event per batch would itself be fed to the sinks, batch after batch. The
administrators' changes of a sink (``siem_sink.*``, cursor rewinds included) are audited.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from idgov.clock import Clock
from idgov.config import Settings
from idgov.db.session import unit_of_work
from idgov.models.siem import SiemSink
from idgov.provisioning.periodic import register_job
from idgov.siem import repository, service
from idgov.siem.syslog import SyslogConnection, format_message, frame, local_hostname
from idgov.types import Actor

log = logging.getLogger(__name__)

JOB_NAME = "siem.syslog"
EVERY = timedelta(seconds=10)
BATCH_SIZE = 500
# Batches one run sends to one sink at most, so a sink catching up on a long trail does not
# hold the worker's other periodic jobs: the next run goes on from the cursor.
MAX_BATCHES = 100
TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True)
class SinkTarget:
    """What one run needs of a sink, read once at its start."""

    id: uuid.UUID
    name: str
    host: str
    port: int
    tls: bool
    ca_file: str | None
    app_name: str
    cursor_seq: int


def _lock_key(sink_id: uuid.UUID) -> int:
    digest = hashlib.sha256(f"idgov.siem.syslog:{sink_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


@contextmanager
def _exclusive(factory: sessionmaker[Session], sink_id: uuid.UUID) -> Iterator[bool]:
    """True while this process may feed the sink (see the module doc)."""
    session = factory()
    try:
        if session.get_bind().dialect.name != "postgresql":
            yield True
            return
        yield bool(session.scalar(select(func.pg_try_advisory_xact_lock(_lock_key(sink_id)))))
    finally:
        with suppress(Exception):
            session.rollback()
        session.close()


def _target(factory: sessionmaker[Session], sink_id: uuid.UUID) -> SinkTarget | None:
    with unit_of_work(factory) as session:
        sink = session.get(SiemSink, sink_id)
        if sink is None or not sink.enabled:
            return None
        return SinkTarget(id=sink.id, name=sink.name, host=sink.host, port=sink.port,
                          tls=sink.tls, ca_file=sink.ca_file, app_name=sink.app_name,
                          cursor_seq=sink.cursor_seq)


def _describe(error: OSError, target: SinkTarget) -> str:
    scheme = "tls" if target.tls else "tcp"
    return f"{scheme}://{target.host}:{target.port}: {type(error).__name__}: {error}"[:2000]


def deliver(factory: sessionmaker[Session], *, sink_id: uuid.UUID, clock: Clock,
            batch_size: int = BATCH_SIZE, max_batches: int = MAX_BATCHES,
            timeout: float = TIMEOUT_SECONDS, hostname: str | None = None) -> int:
    """Send one sink the sealed events after its cursor, batch by batch (module doc).
    Returns how many events were delivered and committed in this run."""
    with _exclusive(factory, sink_id) as mine:
        if not mine:
            return 0
        target = _target(factory, sink_id)
        if target is None:
            return 0
        host = hostname or local_hostname()
        cursor, sent = target.cursor_seq, 0
        connection: SyslogConnection | None = None
        try:
            for _ in range(max_batches):
                with unit_of_work(factory) as session:
                    batch = service.read_batch(session, after_seq=cursor, limit=batch_size)
                if not batch.documents:
                    break
                payload = b"".join(frame(format_message(d, app_name=target.app_name,
                                                        hostname=host))
                                   for d in batch.documents)
                if connection is None:
                    connection = SyslogConnection(target.host, target.port, tls=target.tls,
                                                  ca_file=target.ca_file, timeout=timeout)
                connection.send(payload)
                with unit_of_work(factory) as session:
                    moved = repository.advance_cursor(session, sink_id, expected=cursor,
                                                      to=batch.last_seq, at=clock.now())
                if not moved:
                    log.warning("siem sink %s: its cursor was moved during a send; the next "
                                "run starts from the new one", target.name)
                    break
                sent += len(batch.documents)
                cursor = batch.last_seq
                if not batch.has_more:
                    break
        except OSError as error:  # ssl.SSLError and socket timeouts are OSErrors
            with unit_of_work(factory) as session:
                repository.set_error(session, sink_id, message=_describe(error, target))
            log.warning("siem sink %s: delivery failed (%s); cursor kept at %d, retried at "
                        "the next run", target.name, type(error).__name__, cursor)
        finally:
            if connection is not None:
                connection.close()
        return sent


def syslog_job(session_factory: sessionmaker[Session], settings: Settings, clock: Clock,
               actor: Actor) -> int:
    """``siem.syslog``: feed every enabled sink (module doc); returns the events delivered."""
    del settings, actor
    with unit_of_work(session_factory) as session:
        sink_ids = repository.enabled_sink_ids(session)
    total = 0
    for sink_id in sink_ids:
        try:
            total += deliver(session_factory, sink_id=sink_id, clock=clock)
        except Exception as error:  # one sink's fault never stops the others
            log.error("siem sink %s: delivery run failed: %s", sink_id, type(error).__name__)
    return total


def register_jobs() -> None:
    """Register ``siem.syslog`` with the core's workers."""
    register_job(JOB_NAME, every=EVERY, job=syslog_job)
