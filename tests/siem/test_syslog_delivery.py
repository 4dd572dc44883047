"""The siem.syslog job: every sealed event reaches each sink once, in order, across restarts;
a sink that is down keeps its cursor; TLS is verified against the sink's CA."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from idgov.audit.service import install_sealer
from idgov.audit.signing import Signer
from idgov.clock import FixedClock
from idgov.config import Settings
from idgov.db.session import make_session_factory, unit_of_work
from idgov.models.audit import AuditEvent
from idgov.models.siem import SiemSink
from idgov.provisioning import periodic
from idgov.siem import service, tasks
from idgov.siem.schemas import SiemSinkCreate
from idgov.types import Actor
from tests import databases
from tests.audit.chain import write_chain
from tests.siem.receiver import SyslogReceiver, free_port, make_pki
from tests.siem.rfc5424 import parse

ADMIN = Actor.system("siem-tests")


@pytest.fixture
def receivers() -> Iterator[list[SyslogReceiver]]:
    started: list[SyslogReceiver] = []
    yield started
    for receiver in started:
        receiver.stop()


def _receiver(receivers: list[SyslogReceiver], port: int = 0,
              tls: ssl.SSLContext | None = None) -> SyslogReceiver:
    receiver = SyslogReceiver(port, tls=tls)
    receivers.append(receiver)
    return receiver


def _add_sink(factory: sessionmaker[Session], clock: FixedClock, name: str, port: int,
              **fields: Any) -> str:
    with unit_of_work(factory) as session:
        view = service.create_sink(session, sink_in=SiemSinkCreate(
            name=name, host="127.0.0.1", port=port, **fields), actor=ADMIN, clock=clock)
        return str(view.sink.id)


def _sink(factory: sessionmaker[Session], name: str) -> SiemSink:
    with unit_of_work(factory) as session:
        found = session.scalars(select(SiemSink).where(SiemSink.name == name)).one()
        session.expunge(found)
        return found


def _head(factory: sessionmaker[Session]) -> int:
    with unit_of_work(factory) as session:
        return session.scalar(select(AuditEvent.seq).order_by(AuditEvent.seq.desc())
                              .limit(1)) or 0


def _seqs(receiver: SyslogReceiver) -> list[int]:
    parsed = [parse(m) for m in receiver.messages]
    for p in parsed:  # the structured data and the JSON body name the same event
        assert int(p.params["seq"]) == p.document["seq"]
        assert p.params["id"] == p.document["id"]
    return [p.document["seq"] for p in parsed]


def _fresh_factory(db_url: str, signer: Signer) -> tuple[sessionmaker[Session], Engine]:
    """A new engine and session factory: what a restarted process would open."""
    engine = databases.make_test_engine(db_url)
    factory = make_session_factory(engine)
    install_sealer(factory, signer)
    return factory, engine


def test_each_event_reaches_the_sink_once_in_order_across_a_restart(
        db_url: str, signer: Signer, engine: Engine, session_factory: sessionmaker[Session],
        clock: FixedClock, settings: Settings, receivers: list[SyslogReceiver]) -> None:
    write_chain(session_factory, clock, transactions=3, events_per_transaction=3)
    first = _receiver(receivers)
    _add_sink(session_factory, clock, "soc", first.port, app_name="idgov-test")
    head = _head(session_factory)
    assert head == 10  # nine things and the sink's own creation

    sent = tasks.deliver(session_factory, sink_id=_sink(session_factory, "soc").id,
                         clock=clock, batch_size=4)
    assert sent == 10
    first.wait_for(10, closed=1)
    assert _seqs(first) == list(range(1, 11))
    assert first.connections == 1 and first.errors == []
    sink = _sink(session_factory, "soc")
    assert (sink.cursor_seq, sink.last_sent_at, sink.last_error) == (10, clock.now(), None)
    sample = parse(first.messages[0])
    assert (sample.app_name, sample.msgid, sample.params["actor_name"]) == (
        "idgov-test", "thing.update", "audit-tests")

    # Restart: the receiver goes away, the service writes on through a new engine, the
    # receiver comes back on the same port, and a new process runs the job.
    first.stop()
    engine.dispose()
    writer, writer_engine = _fresh_factory(db_url, signer)
    clock.advance(timedelta(minutes=5))
    write_chain(writer, clock, transactions=2, events_per_transaction=2, tag="r")
    writer_engine.dispose()
    second = _receiver(receivers, first.port)
    runner, runner_engine = _fresh_factory(db_url, signer)
    try:
        assert tasks.syslog_job(runner, settings, clock, ADMIN) == 4
        second.wait_for(4, closed=1)
        assert _seqs(second) == [11, 12, 13, 14]
        assert [parse(m).document["object"]["id"] for m in second.messages] == [
            "r0-0", "r0-1", "r1-0", "r1-1"]
        assert _seqs(first) + _seqs(second) == list(range(1, 15))  # no gap, no duplicate
        # Nothing new: the next run sends nothing and opens no connection.
        assert tasks.syslog_job(runner, settings, clock, ADMIN) == 0
        assert second.connections == 1
        assert _sink(runner, "soc").cursor_seq == 14
    finally:
        runner_engine.dispose()


def test_a_sink_that_is_down_keeps_its_cursor_and_the_others_still_receive(
        session_factory: sessionmaker[Session], clock: FixedClock, settings: Settings,
        receivers: list[SyslogReceiver]) -> None:
    write_chain(session_factory, clock, transactions=1, events_per_transaction=3)
    up = _receiver(receivers)
    down_port = free_port()
    _add_sink(session_factory, clock, "a-down", down_port)
    _add_sink(session_factory, clock, "b-up", up.port)
    head = _head(session_factory)

    assert tasks.syslog_job(session_factory, settings, clock, ADMIN) == head
    up.wait_for(head, closed=1)
    assert _seqs(up) == list(range(1, head + 1))
    down = _sink(session_factory, "a-down")
    assert (down.cursor_seq, down.last_sent_at) == (0, None)
    assert down.last_error is not None
    assert down.last_error.startswith(f"tcp://127.0.0.1:{down_port}: ConnectionRefusedError")
    assert _sink(session_factory, "b-up").cursor_seq == head

    # It comes back: the next run sends it everything, from its cursor; the other gets
    # nothing twice.
    back = _receiver(receivers, down_port)
    clock.advance(timedelta(seconds=30))
    assert tasks.syslog_job(session_factory, settings, clock, ADMIN) == head
    back.wait_for(head, closed=1)
    assert _seqs(back) == list(range(1, head + 1))
    assert len(up.messages) == head
    down = _sink(session_factory, "a-down")
    assert (down.cursor_seq, down.last_sent_at, down.last_error) == (head, clock.now(), None)


def test_tls_sink_is_verified_against_its_ca(
        session_factory: sessionmaker[Session], clock: FixedClock, settings: Settings,
        tmp_path: Path, receivers: list[SyslogReceiver]) -> None:
    pki = make_pki(tmp_path / "pki", "soc")
    stranger = make_pki(tmp_path / "other", "stranger")
    receiver = _receiver(receivers, tls=pki.server)
    write_chain(session_factory, clock, transactions=1, events_per_transaction=2)
    _add_sink(session_factory, clock, "tls", receiver.port, tls=True, ca_file=str(pki.ca_file))
    _add_sink(session_factory, clock, "wrong-ca", receiver.port, tls=True,
              ca_file=str(stranger.ca_file))
    head = _head(session_factory)

    assert tasks.syslog_job(session_factory, settings, clock, ADMIN) == head
    receiver.wait_for(head, closed=2)
    assert _seqs(receiver) == list(range(1, head + 1))
    assert _sink(session_factory, "tls").cursor_seq == head
    refused = _sink(session_factory, "wrong-ca")
    assert refused.cursor_seq == 0
    assert refused.last_error is not None and "CERTIFICATE_VERIFY_FAILED" in refused.last_error


def test_the_workers_run_the_registered_job(
        session_factory: sessionmaker[Session], clock: FixedClock, settings: Settings,
        receivers: list[SyslogReceiver]) -> None:
    registered_before = tasks.JOB_NAME in periodic._PLUGIN_JOBS
    tasks.register_jobs()
    try:
        receiver = _receiver(receivers)
        write_chain(session_factory, clock, transactions=1, events_per_transaction=2)
        _add_sink(session_factory, clock, "soc", receiver.port)
        counts = periodic.run_due_jobs(session_factory, settings=settings, clock=clock)
        assert counts[tasks.JOB_NAME] == 3
        receiver.wait_for(3, closed=1)
        assert _seqs(receiver) == [1, 2, 3]
    finally:
        if not registered_before:
            periodic._PLUGIN_JOBS.pop(tasks.JOB_NAME, None)


def test_a_run_sends_at_most_its_share_of_batches_and_the_next_goes_on(
        session_factory: sessionmaker[Session], clock: FixedClock,
        receivers: list[SyslogReceiver]) -> None:
    receiver = _receiver(receivers)
    write_chain(session_factory, clock, transactions=1, events_per_transaction=4)
    _add_sink(session_factory, clock, "soc", receiver.port)
    sink_id = _sink(session_factory, "soc").id
    assert tasks.deliver(session_factory, sink_id=sink_id, clock=clock, batch_size=2,
                         max_batches=2) == 4
    assert _sink(session_factory, "soc").cursor_seq == 4
    # The receiver reads each connection on a thread of its own: let it finish the first
    # before the second run connects, so that arrival order is sending order.
    receiver.wait_for(4, closed=1)
    assert tasks.deliver(session_factory, sink_id=sink_id, clock=clock, batch_size=2,
                         max_batches=2) == 1
    receiver.wait_for(5, closed=2)
    assert _seqs(receiver) == [1, 2, 3, 4, 5]
