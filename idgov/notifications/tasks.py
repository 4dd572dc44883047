"""notifications.deliver: mail the due outbox rows, each at most once, with retries.

A batch runs in three kinds of short transactions: one claims the due rows (counting the
attempt and hiding them for a lease), then, for each message after SMTP answers, one records
the outcome. Nothing is held open while talking to the mail server. Two deliverers running
at once claim disjoint rows. A deliverer that dies after claiming leaves its rows hidden until
the lease ends; they are then claimed again (the message keeps its Message-ID and
``X-Idgov-Notification`` header, so a copy sent twice in that case is recognisable).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session, sessionmaker

from idgov.clock import Clock
from idgov.config import Settings
from idgov.db.session import unit_of_work
from idgov.notifications import repository
from idgov.notifications.repository import ClaimedMail
from idgov.notifications.smtp import (
    ConnectFailed,
    SendFailed,
    SmtpConfig,
    SmtpMailer,
    build_message,
    describe,
)

log = logging.getLogger(__name__)

MIN_LEASE = timedelta(minutes=15)


@dataclass(frozen=True)
class DeliveryResult:
    """What one run did: mailed, given up on (state 'failed'), rescheduled for later."""

    sent: int = 0
    failed: int = 0
    retried: int = 0

    @property
    def handled(self) -> int:
        return self.sent + self.failed + self.retried

    def __add__(self, other: DeliveryResult) -> DeliveryResult:
        return DeliveryResult(self.sent + other.sent, self.failed + other.failed,
                              self.retried + other.retried)


def backoff(attempts: int) -> timedelta:
    """The wait before the next try after ``attempts`` failed ones: 2, 4, 8, 16... minutes."""
    return timedelta(minutes=2 ** attempts)


def claim_lease(settings: Settings, limit: int) -> timedelta:
    """How long claimed rows stay hidden: longer than a batch can take to send."""
    worst = timedelta(seconds=settings.smtp_timeout_seconds * 3 * limit)
    return max(MIN_LEASE, worst)


def claim(session_factory: sessionmaker[Session], *, now: datetime, lease: timedelta,
          limit: int) -> list[ClaimedMail]:
    """Claim due rows in a transaction of their own, committed before anything is sent."""
    with unit_of_work(session_factory) as session:
        return repository.claim_due(session, now=now, lease_until=now + lease, limit=limit)


def _record_failure(session_factory: sessionmaker[Session], mail: ClaimedMail, *,
                    error: SendFailed, max_attempts: int, now: datetime) -> bool:
    """Reschedule, or give up; True when the row is now 'failed'."""
    with unit_of_work(session_factory) as session:
        if error.permanent or mail.attempts >= max_attempts:
            repository.mark_failed(session, mail.id, error=error.reason)
            log.warning("notification %s not mailed, giving up after %d attempt(s): %s",
                        mail.id, mail.attempts, error.reason)
            return True
        repository.reschedule(session, mail.id, next_attempt_at=now + backoff(mail.attempts),
                              error=error.reason)
        log.info("notification %s not mailed (attempt %d), retrying later: %s",
                 mail.id, mail.attempts, error.reason)
        return False


def deliver_pending(session_factory: sessionmaker[Session], *, settings: Settings,
                    clock: Clock, limit: int = 100) -> DeliveryResult:
    """Mail up to ``limit`` due pending notifications over one SMTP connection.

    Each claimed row ends 'sent' (``sent_at``), or is rescheduled ``2^attempts`` minutes
    later with ``last_error``, or, after ``settings.notification_max_attempts`` attempts or
    a permanent refusal (5xx for the recipient or the content), ends 'failed'. When the
    server cannot be reached the rest of the batch is rescheduled without trying each one.
    Without ``smtp_host`` nothing is claimed: the rows stay pending for when mail is set up.
    """
    config = SmtpConfig.from_settings(settings)
    if config is None:
        return DeliveryResult()
    claimed = claim(session_factory, now=clock.now(), lease=claim_lease(settings, limit),
                    limit=limit)
    if not claimed:
        return DeliveryResult()
    sent = failed = retried = 0
    unreachable: ConnectFailed | None = None
    with SmtpMailer(config) as mailer:
        for mail in claimed:
            error: SendFailed | None = unreachable
            if error is None:
                error = _send_one(mailer, config, mail, clock)
                if isinstance(error, ConnectFailed):
                    unreachable = error
            if error is None:
                with unit_of_work(session_factory) as session:
                    repository.mark_sent(session, mail.id, at=clock.now())
                sent += 1
            elif _record_failure(session_factory, mail, error=error,
                                 max_attempts=settings.notification_max_attempts,
                                 now=clock.now()):
                failed += 1
            else:
                retried += 1
    log.info("notifications mailed: %d sent, %d retried later, %d failed", sent, retried,
             failed)
    return DeliveryResult(sent=sent, failed=failed, retried=retried)


def _send_one(mailer: SmtpMailer, config: SmtpConfig, mail: ClaimedMail,
              clock: Clock) -> SendFailed | None:
    try:
        message = build_message(notification_id=mail.id, to=mail.email, subject=mail.subject,
                                body=mail.body, sender=config.sender, date=clock.now(),
                                message_id_domain=config.message_id_domain)
    except (ValueError, TypeError) as exc:
        return SendFailed(f"cannot build the message: {describe(exc)}", permanent=True)
    try:
        mailer.send(message)
    except SendFailed as exc:
        return exc
    return None
