"""Mail by SMTP: build one RFC 5322 message per notification, send a batch on one connection.

smtplib's exceptions are translated here into :class:`SendFailed`, which says whether trying
again later can help. The SMTP password is passed to the server and nowhere else: it is not
in any error text, log line or repr.
"""

from __future__ import annotations

import email.errors
import smtplib
import ssl
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from types import TracebackType

from pydantic import SecretStr

from idgov.config import Settings

NOTIFICATION_HEADER = "X-Idgov-Notification"
ERROR_MAX = 2000


@dataclass(frozen=True)
class SmtpConfig:
    """Where and how to send; built from the ``smtp_*`` settings."""

    host: str
    port: int
    sender: str
    starttls: bool = False
    use_ssl: bool = False
    username: str | None = None
    password: SecretStr | None = field(default=None, repr=False)
    timeout: float = 10.0

    @classmethod
    def from_settings(cls, settings: Settings) -> SmtpConfig | None:
        """None when no SMTP host is configured (mail is then not sent at all)."""
        if not settings.smtp_host:
            return None
        return cls(host=settings.smtp_host, port=settings.smtp_port, sender=settings.smtp_from,
                   starttls=settings.smtp_starttls, use_ssl=settings.smtp_ssl,
                   username=settings.smtp_username, password=settings.smtp_password,
                   timeout=settings.smtp_timeout_seconds)

    @property
    def sender_address(self) -> str:
        return parseaddr(self.sender)[1] or self.sender

    @property
    def message_id_domain(self) -> str:
        domain = self.sender_address.rpartition("@")[2]
        return domain or "idgov.localhost"


def build_message(*, notification_id: uuid.UUID, to: str, subject: str, body: str,
                  sender: str, date: datetime, message_id_domain: str) -> EmailMessage:
    """The message for one notification, plain text.

    Message-ID and ``X-Idgov-Notification`` derive from the notification id alone, so a
    message sent again after a crash (between sending and recording it) is recognisable as
    the same one.
    """
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = format_datetime(date)
    message["Message-ID"] = f"<{notification_id}@{message_id_domain}>"
    message[NOTIFICATION_HEADER] = str(notification_id)
    message.set_content(body)
    return message


class SendFailed(Exception):
    """A message was not accepted. ``permanent``: the server refused it for good (5xx for the
    recipient or the content); otherwise trying again later may work."""

    def __init__(self, reason: str, *, permanent: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent


class ConnectFailed(SendFailed):
    """No usable connection (refused, timeout, TLS, login): nothing can be sent now."""


def _text(raw: bytes | str) -> str:
    return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw


def describe(exc: BaseException, *, password: SecretStr | None = None) -> str:
    """A one-line, secret-free account of an SMTP or network error, for ``last_error``."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        parts = [f"{addr}: {code} {_text(msg)}" for addr, (code, msg) in exc.recipients.items()]
        text = "recipient refused: " + "; ".join(parts)
    elif isinstance(exc, smtplib.SMTPAuthenticationError):
        text = f"SMTP login refused: {exc.smtp_code} {_text(exc.smtp_error)}"
    elif isinstance(exc, smtplib.SMTPResponseException):
        text = f"{type(exc).__name__}: {exc.smtp_code} {_text(exc.smtp_error)}"
    else:
        text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    text = " ".join(text.split())
    secret = password.get_secret_value() if password is not None else ""
    if secret:
        text = text.replace(secret, "***")
    return text[:ERROR_MAX]


def _is_permanent(exc: smtplib.SMTPException) -> bool:
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return bool(exc.recipients) and all(code >= 500 for code, _ in exc.recipients.values())
    return isinstance(exc, smtplib.SMTPDataError) and exc.smtp_code >= 500


class SmtpMailer:
    """One SMTP connection for a batch, opened on the first message, reopened after a drop.

    Use as a context manager; :meth:`send` raises :class:`SendFailed` (or
    :class:`ConnectFailed` when no connection can be made).
    """

    def __init__(self, config: SmtpConfig) -> None:
        self.config = config
        self._conn: smtplib.SMTP | None = None

    def __enter__(self) -> SmtpMailer:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def _connect(self) -> smtplib.SMTP:
        cfg = self.config
        conn: smtplib.SMTP | None = None
        try:
            if cfg.use_ssl:
                conn = smtplib.SMTP_SSL(cfg.host, cfg.port, timeout=cfg.timeout,
                                        context=ssl.create_default_context())
            else:
                conn = smtplib.SMTP(cfg.host, cfg.port, timeout=cfg.timeout)
            conn.ehlo_or_helo_if_needed()
            if cfg.starttls and not cfg.use_ssl:
                conn.starttls(context=ssl.create_default_context())
                conn.ehlo()
            if cfg.username:
                password = cfg.password.get_secret_value() if cfg.password else ""
                conn.login(cfg.username, password)
        except (OSError, ValueError) as exc:  # smtplib.SMTPException is an OSError
            if conn is not None:
                _close_quietly(conn)
            raise ConnectFailed(describe(exc, password=cfg.password)) from None
        return conn

    def send(self, message: EmailMessage) -> None:
        """Send one message to its ``To`` address from the configured sender."""
        if self._conn is None:
            self._conn = self._connect()
        try:
            self._conn.send_message(message, from_addr=self.config.sender_address,
                                    to_addrs=[str(message["To"])])
        except (smtplib.SMTPRecipientsRefused, smtplib.SMTPSenderRefused,
                smtplib.SMTPDataError) as exc:
            # The server answered; the connection stays usable for the next message.
            raise SendFailed(describe(exc, password=self.config.password),
                             permanent=_is_permanent(exc)) from None
        except (OSError, ValueError, email.errors.MessageError) as exc:
            # Dropped connection, timeout, protocol error: start afresh for the next one.
            self.close()
            raise SendFailed(describe(exc, password=self.config.password)) from None

    def close(self) -> None:
        if self._conn is not None:
            _close_quietly(self._conn)
            self._conn = None


def _close_quietly(conn: smtplib.SMTP) -> None:
    try:
        conn.quit()
    except (OSError, smtplib.SMTPException):
        conn.close()
