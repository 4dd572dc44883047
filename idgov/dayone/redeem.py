"""Redeeming a one-time link (no login: the token is the credential): who it is for and what
it covers (:func:`lookup`), then the person's own password on every ``set_password``
application and a temporary access pass on every ``temporary_access_pass`` one
(:func:`redeem`).

The token is never logged nor audited: events name the link by its id. Password targets go
first and passes last, so that a failure leaves as little as possible applied; on any
failure the link stays open (redeeming again sets the password again and replaces the
passes) and the result says, per application, what happened.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from connectors.base import (
    CAN_SET_PASSWORD,
    CAN_TEMPORARY_ACCESS,
    AccountRef,
    Connector,
    PasswordSetter,
    TemporaryAccess,
    TemporaryAccessPass,
)
from connectors.errors import ConnectorError, NotSupported
from idgov.audit.service import record
from idgov.clock import Clock
from idgov.config import Settings
from idgov.dayone import repository
from idgov.dayone.service import audit_view, token_hash
from idgov.errors import Conflict, DomainError, ErrorList, NotFound
from idgov.models.application import Application
from idgov.models.hr import DayOneLink
from idgov.models.identity import Identity
from idgov.provisioning.connections import Target, build_connector
from idgov.types import Actor

log = logging.getLogger(__name__)

ConnectorFactory = Callable[[Application], Connector]
MIN_NAME_PART = 3  # shorter name parts ("Li", "Ng") are not looked for in passwords


class LinkGone(DomainError):
    """The link was used, has expired or was withdrawn (the API answers 410)."""

    title = "Link no longer valid"


@dataclass
class Covered:
    """One application a link covers, and how first access reaches the person there."""

    application: Application
    method: str
    username: str | None
    native_id: str | None


@dataclass
class Outcome:
    """What redeeming did on one application."""

    covered: Covered
    outcome: str  # password_set | pass_issued | skipped | failed | not_tried
    access_pass: TemporaryAccessPass | None = None
    error_category: str | None = None
    note: str | None = None


@dataclass
class LinkView:
    link: DayOneLink
    identity: Identity
    covered: list[Covered]
    outcomes: list[Outcome] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return all(o.outcome in ("password_set", "pass_issued", "skipped")
                   for o in self.outcomes)


def settings_value(settings: Settings | None, name: str, default: Any) -> Any:
    """A day-one setting (until the configuration declares them all)."""
    value = getattr(settings, name, None)
    return default if value is None else value


def _load(session: Session, token: str, *, now: datetime, lock: bool) -> LinkView:
    link = repository.link_by_hash(session, token_hash(token), lock=lock)
    if link is None:
        raise NotFound("no such day-one link")
    identity = session.get(Identity, link.identity_id)
    if link.state == "redeemed":
        raise LinkGone("this day-one link has been used already")
    if link.state != "open" or link.expires_at <= now or identity is None \
            or identity.lifecycle_state == "terminated":
        raise LinkGone("this day-one link has expired")
    app_ids = [uuid.UUID(str(i)) for i in link.application_ids]
    apps = repository.applications(session, app_ids)
    accounts = repository.primary_accounts(session, identity_id=identity.id,
                                           application_ids=app_ids)
    methods = link.detail.get("methods") or {}
    covered = [Covered(application=apps[i], method=str(methods.get(str(i), CAN_SET_PASSWORD)),
                       username=accounts[i].username if i in accounts else None,
                       native_id=accounts[i].native_id if i in accounts else None)
               for i in app_ids if i in apps]
    return LinkView(link=link, identity=identity, covered=covered)


def lookup(session: Session, *, token: str, clock: Clock) -> LinkView:
    """Who the link is for and what it covers (a link not yet usable is shown too: its
    ``not_before`` says from when). NotFound for an unknown token, LinkGone for a used or
    expired one. Changes nothing."""
    return _load(session, token, now=clock.now(), lock=False)


def password_errors(password: str | None, identity: Identity, usernames: list[str], *,
                    min_length: int) -> ErrorList:
    """The password policy: at least ``min_length`` characters, none of the person's user
    names or given or family name (ignoring case, parts shorter than 3 characters)."""
    errors = ErrorList()
    if not password:
        errors.add("password", "a password is needed for the applications this link covers")
        return errors
    if len(password) < min_length:
        errors.add("password", f"at least {min_length} characters")
    folded = password.casefold()
    names = [n for n in (*usernames, identity.user_name or "") if n]
    if any(n.casefold().split("@")[0] in folded for n in names
           if len(n.split("@")[0]) >= MIN_NAME_PART):
        errors.add("password", "must not contain your user name")
    parts = [p for name in (identity.given_name, identity.family_name)
             for p in name.replace("-", " ").replace("'", " ").split()]
    if any(p.casefold() in folded for p in parts if len(p) >= MIN_NAME_PART):
        errors.add("password", "must not contain your given or family name")
    return errors


def redeem(session: Session, *, token: str, password: str | None, settings: Settings | None,
           clock: Clock, connectors: ConnectorFactory | None = None) -> LinkView:
    """Set the person's password on every ``set_password`` application, then issue a pass on
    every ``temporary_access_pass`` one, and close the link (single use).

    Raises NotFound (unknown token), LinkGone (used, expired), Conflict (before
    ``not_before``), InvalidInput (the password policy, checked before any target is
    called). A target failing leaves the link open; the result's outcomes say what was done
    where (``complete`` is False) and the passes issued are not shown. Audited with the
    link's id (``day_one_link.redeem`` or ``day_one_link.redeem_failed``), never the token.
    """
    now = clock.now()
    view = _load(session, token, now=now, lock=True)
    link, identity = view.link, view.identity
    if link.not_before is not None and now < link.not_before:
        raise Conflict(f"this day-one link works from {link.not_before.isoformat()}",
                       not_before=link.not_before.isoformat())
    ordered = sorted(view.covered, key=lambda c: c.method != CAN_SET_PASSWORD)
    if any(c.method == CAN_SET_PASSWORD and c.native_id for c in ordered):
        password_errors(password, identity, [c.username for c in ordered if c.username],
                        min_length=int(settings_value(settings, "day_one_password_min_length",
                                                      12))).raise_if_any(
            "the password does not meet the policy")
    build = connectors or (lambda app: build_connector(Target.of(app),
                                                       settings or Settings()))
    failed = False
    for covered in ordered:
        if failed:
            view.outcomes.append(Outcome(covered, "not_tried"))
            continue
        outcome = _apply(covered, password, build, settings)
        failed = outcome.outcome == "failed"
        view.outcomes.append(outcome)
    # The token's holder acts as the person it was made for.
    actor = Actor.for_identity(identity.id, identity.display_name)
    summary = {str(o.covered.application.id): o.outcome for o in view.outcomes}
    before = audit_view(link)
    if view.complete:
        link.state = "redeemed"
        link.redeemed_at = now
        link.detail = {**link.detail, "redeemed": summary}
        session.flush()
    record(session, actor=actor,
           action="day_one_link.redeem" if view.complete else "day_one_link.redeem_failed",
           object_type="day_one_link", object_id=link.id, clock=clock, before=before,
           after=audit_view(link), context={"via": "day_one_link", "applications": summary})
    return view


@contextmanager
def _connector(build: ConnectorFactory, application: Application) -> Iterator[Connector]:
    connector = build(application)
    try:
        yield connector
    finally:
        try:
            connector.close()
        except Exception:  # closing is best effort
            log.info("closing the %s connector failed", application.connector_kind)


def _apply(covered: Covered, password: str | None, build: ConnectorFactory,
           settings: Settings | None) -> Outcome:
    if covered.native_id is None:
        return Outcome(covered, "skipped", note="no account there (yet): ask your manager")
    ref = AccountRef(native_id=covered.native_id, username=covered.username or "")
    try:
        with _connector(build, covered.application) as connector:
            if covered.method == CAN_SET_PASSWORD:
                if not isinstance(connector, PasswordSetter) \
                        or CAN_SET_PASSWORD not in connector.capabilities:
                    raise NotSupported("the target no longer takes passwords")
                assert password is not None
                connector.set_password(ref, password)
                return Outcome(covered, "password_set")
            if covered.method == CAN_TEMPORARY_ACCESS and isinstance(connector, TemporaryAccess) \
                    and CAN_TEMPORARY_ACCESS in connector.capabilities:
                issued = connector.issue_temporary_access_pass(
                    ref, lifetime_minutes=int(settings_value(
                        settings, "day_one_tap_lifetime_minutes", 480)),
                    usable_once=bool(settings_value(settings, "day_one_tap_usable_once",
                                                    False)))
                return Outcome(covered, "pass_issued", access_pass=issued)
            raise NotSupported("the target no longer issues temporary access passes")
    except ConnectorError as error:
        log.info("day-one redemption on %s failed (%s)", covered.application.name,
                 error.category)
        return Outcome(covered, "failed", error_category=error.category,
                       note=str(error)[:300])
    except Exception as error:  # a connector's bug must not leave the link half-done
        log.warning("day-one redemption on %s: unexpected %s", covered.application.name,
                    type(error).__name__)
        return Outcome(covered, "failed", error_category="system_unavailable",
                       note=f"unexpected {type(error).__name__}")
