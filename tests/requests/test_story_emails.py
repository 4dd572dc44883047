"""The emails each step of a request sends, as a real SMTP server receives them.

The outbox rows of every step are checked in the other stories; here the same walk (manager
then owner) is delivered by ``deliver_pending`` to a local aiosmtpd server after each step,
and what arrives is read back: who gets a mail, and what it says.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from idgov.clock import FixedClock
from idgov.config import Settings
from idgov.notifications.tasks import deliver_pending
from tests.notifications.conftest import SmtpServer
from tests.notifications.conftest import smtp_server as smtp_server  # a fixture
from tests.requests.conftest import World


def _deliver(factory: sessionmaker[Session], settings: Settings, clock: FixedClock,
             server: SmtpServer) -> list[tuple[str, str]]:
    """Mail what is due; (recipient, subject) of what the server received, sorted."""
    before = len(server.recorder.received)
    result = deliver_pending(factory, settings=settings, clock=clock)
    assert (result.failed, result.retried) == (0, 0)
    arrived = server.recorder.received[before:]
    assert result.sent == len(arrived)
    return sorted((str(r.message["To"]), str(r.message["Subject"])) for r in arrived)


def test_each_step_of_a_request_mails_the_right_people(
        world: World, smtp_server: SmtpServer, tmp_path: Path,
        session_factory: sessionmaker[Session], clock: FixedClock) -> None:
    settings = Settings(var_dir=tmp_path / "var", smtp_host="127.0.0.1",
                        smtp_port=smtp_server.port, smtp_from="idgov@corp.example")

    def deliver() -> list[tuple[str, str]]:
        return _deliver(session_factory, settings, clock, smtp_server)

    deliver()  # nothing is waiting before the story starts
    req = world.ask("alice", "ledger")
    number = req["number"]
    [line] = req["lines"]
    manager_step, owner_step = line["steps"]
    mails = deliver()
    assert [to for to, _subject in mails] == ["alice@example.com", "mgr@example.com"]
    subjects = dict((to, subject) for to, subject in mails)
    assert subjects["alice@example.com"] == f"{number} submitted"
    assert line["number"] in subjects["mgr@example.com"]

    assert world.decide("manager", manager_step["id"]).status_code == 200
    mails = deliver()
    assert [to for to, _subject in mails] == ["owner@example.com"]
    assert line["number"] in mails[0][1]

    assert world.decide("owner", owner_step["id"]).status_code == 200
    assert deliver() == [("alice@example.com", f"{line['number']} approved")]

    # A refused decision mails nobody; a delivered mail is never sent twice.
    assert world.decide("owner", owner_step["id"]).status_code == 409
    assert deliver() == []
    assert len(smtp_server.recorder.received) == 4
