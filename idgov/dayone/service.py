"""Day-one access for joiners, core side: recording the ``deliver_access`` operations, and
what follows a delivery that the target could not make itself (the one-time link and the
manager's message).

A ``deliver_access`` operation runs after its application's ``create_account`` (a higher
ordinal) and not before the hire starts (``next_attempt_at`` and ``detail.not_before``). The
engine calls the target (:mod:`idgov.dayone.delivery`): Keycloak emails the person the
actions to set up the account and the operation succeeds. A target without its own way
(LDAP: a password; Entra: a temporary access pass) is not called: the identity's open
one-time link gains the application (a link is made when there is none open) and
:func:`complete_delivery`, in the transaction that records the outcome, tells the manager.
The token is shown only in that message: only its SHA-256 is stored, and the URL carries it
in the fragment (``/day-one/#<token>``) so that it never appears in a request line or an
access log. A joiner without a manager fails the operation (policy_violation): the
application's resolution group hands access over instead.

Manual applications get no ``deliver_access`` operation: whoever creates the account by hand
hands access over with it (should one be recorded anyway, the engine opens a fulfilment task
for it, as for any operation of a manual application).
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import uuid
from collections.abc import Collection
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from connectors.errors import ConnectorError, PolicyViolation
from idgov.audit.service import record, snapshot
from idgov.clock import Clock
from idgov.dayone import repository
from idgov.dayone.delivery import ThroughLink
from idgov.models.application import Application
from idgov.models.hr import DayOneLink
from idgov.models.identity import Identity
from idgov.models.provisioning import ProvisioningOperation
from idgov.notifications.service import notify
from idgov.provisioning.accounts import _add_operation, account_key, mapping_of
from idgov.provisioning.repository import key_exists
from idgov.types import Actor

log = logging.getLogger(__name__)

ACTION = "deliver_access"
LINK_PATH = "/day-one/"
# Link fields left out of audit events: the token's hash is not evidence of anything.
_UNAUDITED = frozenset({"token_hash"})


def token_hash(token: str) -> str:
    """The stored form of a link's token."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def link_url(base_url: str, token: str) -> str:
    """The URL the manager passes on: the token in the fragment, never sent to a server."""
    return f"{base_url.rstrip('/')}{LINK_PATH}#{token}"


def delivery_key(*, cause_id: str, identity_id: uuid.UUID, application_id: uuid.UUID) -> str:
    """The idempotency key of a deliver_access operation (cause 'lifecycle'): the account
    operations' key, as the bulk joiner path writes it too."""
    return account_key(cause="lifecycle", cause_id=cause_id, identity_id=identity_id,
                       application_id=application_id, action=ACTION)


def audit_view(link: DayOneLink) -> dict[str, Any]:
    """A link as audit events show it (no token, no hash)."""
    return snapshot(link, exclude=_UNAUDITED)


# --- recording ---------------------------------------------------------------------------------


def record_day_one(session: Session, *, identity_id: uuid.UUID,
                   application_ids: Collection[uuid.UUID], not_before: datetime | None,
                   cause_id: str, actor: Actor, clock: Clock) -> list[ProvisioningOperation]:
    """One ``deliver_access`` operation per application whose account is created for a
    joiner, recorded after its ``create_account`` (the next ordinal) and due at
    ``not_before`` (the hire start; None: now). Cause 'lifecycle', key
    :func:`delivery_key`. Skipped: manual applications, applications that do not manage
    accounts, and those with this key or a delivery still open for the identity. Flushes;
    each operation audited ``provisioning.record``."""
    made: list[ProvisioningOperation] = []
    apps = repository.applications(session, set(application_ids))
    detail: dict[str, Any] = {} if not_before is None else {"not_before": not_before.isoformat()}
    for application_id in application_ids:
        application = apps.get(application_id)
        if application is None or application.connector_kind == "manual" \
                or not mapping_of(application).manage_accounts:
            continue
        key = delivery_key(cause_id=cause_id, identity_id=identity_id,
                           application_id=application_id)
        if key_exists(session, key) or repository.open_delivery(
                session, identity_id=identity_id, application_id=application_id) is not None:
            continue
        made.append(_add_operation(
            session, key=key, identity_id=identity_id, application_id=application_id,
            action=ACTION, cause="lifecycle", cause_id=cause_id, detail=dict(detail),
            account_id=None, assignment_id=None, request_line_id=None, actor=actor,
            clock=clock, next_attempt_at=not_before))
    return made


# --- after the target's part -------------------------------------------------------------------


def complete_delivery(session: Session, op: ProvisioningOperation, result: Any, *,
                      actor: Actor, clock: Clock) -> ConnectorError | None:
    """The core's part of a ``deliver_access`` operation whose call succeeded: nothing when
    the target delivered (its email), else the one-time link gains the application and the
    manager is told. Returns the failure to record instead of success (no manager to send
    the link to: policy_violation), or None."""
    if not isinstance(result, ThroughLink):
        return None
    identity = session.get(Identity, op.identity_id)
    application = session.get(Application, op.application_id)
    if identity is None or application is None:  # both are RESTRICTed: cannot happen
        return PolicyViolation("the operation's identity or application is gone")
    manager = session.get(Identity, identity.manager_id) if identity.manager_id else None
    if manager is None or manager.lifecycle_state == "terminated":
        return PolicyViolation(
            f"{identity.display_name} has no manager to give the one-time link for "
            f"{application.name} to: hand first access over another way")
    not_before = _not_before(op)
    expires_at = max(clock.now(), not_before or clock.now()) + timedelta(
        days=result.options.link_days)
    link = _open_link(session, identity.id, clock)
    if link is None:
        token = secrets.token_urlsafe(32)
        link = DayOneLink(id=uuid.uuid4(), identity_id=identity.id,
                          token_hash=token_hash(token), sent_to_id=manager.id,
                          application_ids=[str(application.id)], state="open",
                          created_at=clock.now(), not_before=not_before,
                          expires_at=expires_at, redeemed_at=None,
                          detail={"methods": {str(application.id): result.method},
                                  "operations": [str(op.id)]})
        session.add(link)
        session.flush()
        record(session, actor=actor, action="day_one_link.create", object_type="day_one_link",
               object_id=link.id, clock=clock, after=audit_view(link),
               context={"operation_id": str(op.id)})
        _tell_manager(session, link, identity, manager, [application.name],
                      url=link_url(result.options.base_url, token), clock=clock)
        return None
    before = audit_view(link)
    if str(application.id) not in link.application_ids:
        link.application_ids = [*link.application_ids, str(application.id)]
    methods = dict(link.detail.get("methods") or {})
    methods[str(application.id)] = result.method
    link.detail = {**link.detail, "methods": methods,
                   "operations": [*link.detail.get("operations", []), str(op.id)]}
    link.expires_at = max(link.expires_at, expires_at)
    if not_before is not None and (link.not_before is None or not_before < link.not_before):
        link.not_before = not_before
    session.flush()
    record(session, actor=actor, action="day_one_link.update", object_type="day_one_link",
           object_id=link.id, clock=clock, before=before, after=audit_view(link),
           context={"operation_id": str(op.id)})
    _tell_manager(session, link, identity, manager, [application.name], url=None, clock=clock,
                  also=application.id)
    return None


def _not_before(op: ProvisioningOperation) -> datetime | None:
    value = (op.detail or {}).get("not_before")
    try:
        return datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None


def _open_link(session: Session, identity_id: uuid.UUID, clock: Clock) -> DayOneLink | None:
    """The identity's open link still usable (its others past their expiry are marked so)."""
    found: DayOneLink | None = None
    for link in repository.open_links(session, identity_id):
        if link.expires_at <= clock.now():
            before = audit_view(link)
            link.state = "expired"
            session.flush()
            record(session, actor=Actor.system("day-one"), action="day_one_link.expire",
                   object_type="day_one_link", object_id=link.id, clock=clock,
                   before=before, after=audit_view(link))
        elif found is None:
            found = link
    return found


def _tell_manager(session: Session, link: DayOneLink, identity: Identity, manager: Identity,
                  names: list[str], *, url: str | None, clock: Clock,
                  also: uuid.UUID | None = None) -> None:
    """The manager's message: the link itself when it is new (the only place the token is
    ever shown), else which application it now covers too."""
    starts = link.not_before.strftime("%Y-%m-%d %H:%M UTC") if link.not_before else "now"
    until = link.expires_at.strftime("%Y-%m-%d %H:%M UTC")
    if url is not None:
        subject = f"First-day access for {identity.display_name}"
        body = (f"{identity.display_name} starts soon. On their first day, give them this "
                f"one-time link (in person or to their own address) so that they can set up "
                f"their access to: {', '.join(names)}.\n\n{url}\n\n"
                f"It works once, from {starts} until {until}. Do not use it yourself: no one "
                "but the new starter should know the password or pass it leads to.")
        key = f"day_one.link:{link.id}"
    else:
        subject = f"First-day access for {identity.display_name}: {', '.join(names)}"
        body = (f"The one-time link you received for {identity.display_name} now also covers "
                f"{', '.join(names)}. It works once, until {until}.")
        key = f"day_one.link:{link.id}:{also}"
    notify(session, recipient_id=manager.id, kind="day_one.link", subject=subject, body=body,
           object_type="day_one_link", object_id=str(link.id), dedupe_key=key,
           clock=clock)
