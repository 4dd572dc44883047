"""A real SMTP server (aiosmtpd) in a thread, people to notify, mail settings pointing at it."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session
from sqlalchemy.orm import Session as DbSession
from sqlalchemy.orm import sessionmaker

from idgov.clock import FixedClock
from idgov.config import Settings
from idgov.db.session import unit_of_work
from idgov.models.identity import Identity
from idgov.models.notifications import Notification
from idgov.notifications.service import notify

SMTP_USER = "idgov-mailer"
SMTP_PASSWORD = "s3cret-Smtp-Pa55"


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage


@dataclass
class MailRecorder:
    """aiosmtpd handler: keeps what it accepts; answers ``refuse[address]`` for a recipient."""

    received: list[Received] = field(default_factory=list)
    refuse: dict[str, str] = field(default_factory=dict)

    async def handle_RCPT(  # noqa: N802 (the hook names are aiosmtpd's)
            self, server: Any, session: Session, envelope: Envelope, address: str,
            rcpt_options: list[str]) -> str:
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(  # noqa: N802
            self, server: Any, session: Session, envelope: Envelope) -> str:
        # From the wire's CRLF line ends to the local ones the parser expects.
        content = (envelope.original_content or b"").replace(b"\r\n", b"\n")
        parsed = message_from_bytes(content, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        self.received.append(Received(mail_from=str(envelope.mail_from),
                                      rcpt_tos=list(envelope.rcpt_tos), message=parsed))
        return "250 Message accepted for delivery"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _authenticator(server: Any, session: Session, envelope: Envelope, mechanism: str,
                   auth_data: Any) -> AuthResult:
    ok = (isinstance(auth_data, LoginPassword) and auth_data.login == SMTP_USER.encode()
          and auth_data.password == SMTP_PASSWORD.encode())
    return AuthResult(success=ok, handled=False)


@dataclass
class SmtpServer:
    recorder: MailRecorder
    port: int


def _serve(**kwargs: Any) -> Iterator[SmtpServer]:
    recorder = MailRecorder()
    port = free_port()
    controller = Controller(recorder, hostname="127.0.0.1", port=port, **kwargs)
    controller.start()
    try:
        yield SmtpServer(recorder=recorder, port=port)
    finally:
        controller.stop()


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    """A local SMTP server accepting everything (unless told to refuse a recipient)."""
    yield from _serve()


@pytest.fixture
def smtp_auth_server() -> Iterator[SmtpServer]:
    """A local SMTP server that wants AUTH LOGIN/PLAIN (over plain text: a test only)."""
    yield from _serve(authenticator=_authenticator, auth_require_tls=False, auth_required=False)


@pytest.fixture
def mail_settings(tmp_path: Path, smtp_server: SmtpServer) -> Settings:
    return Settings(var_dir=tmp_path / "var", smtp_host="127.0.0.1", smtp_port=smtp_server.port,
                    smtp_from="IDGov <idgov@corp.example>", smtp_timeout_seconds=5,
                    notification_max_attempts=3)


def add_person(factory: sessionmaker[DbSession], name: str, *,
               email: str | None = "default") -> uuid.UUID:
    """An active identity; ``email`` defaults to <name>@corp.example, None for none."""
    with unit_of_work(factory) as session:
        person = Identity(employee_id=f"E-{name}-{uuid.uuid4().hex[:6]}", given_name=name,
                          family_name="Tester", display_name=f"{name} Tester",
                          email=f"{name.lower()}@corp.example" if email == "default" else email)
        session.add(person)
        session.flush()
        return person.id


def add_notification(factory: sessionmaker[DbSession], clock: FixedClock, recipient_id: uuid.UUID,
                     subject: str = "Approval waiting", *, body: str = "Please decide.",
                     kind: str = "approval.waiting", dedupe_key: str | None = None
                     ) -> uuid.UUID | None:
    with unit_of_work(factory) as session:
        row = notify(session, recipient_id=recipient_id, kind=kind, subject=subject, body=body,
                     object_type="approval_step", object_id="step-1", dedupe_key=dedupe_key,
                     clock=clock)
        return None if row is None else row.id


def load(factory: sessionmaker[DbSession], notification_id: uuid.UUID | None) -> Notification:
    with factory() as session:
        row = session.get(Notification, notification_id)
        assert row is not None
        return row
