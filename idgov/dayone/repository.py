"""The queries of day-one access: links by token hash or identity, the operations and
accounts they refer to."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from idgov.models.application import Account, Application
from idgov.models.hr import DayOneLink
from idgov.models.provisioning import TERMINAL_STATES, ProvisioningOperation


def link_by_hash(session: Session, token_hash: str, *, lock: bool = False) -> DayOneLink | None:
    """The link whose token hashes to ``token_hash``; locked for update with ``lock`` (on
    PostgreSQL: two redemptions at once take turns, the second sees it redeemed)."""
    stmt = select(DayOneLink).where(DayOneLink.token_hash == token_hash)
    if lock:
        stmt = stmt.with_for_update()
    return session.scalars(stmt).one_or_none()


def open_links(session: Session, identity_id: uuid.UUID) -> list[DayOneLink]:
    """The identity's links still open (possibly past their expiry), newest first."""
    return list(session.scalars(
        select(DayOneLink)
        .where(DayOneLink.identity_id == identity_id, DayOneLink.state == "open")
        .order_by(DayOneLink.created_at.desc(), DayOneLink.id.desc())))


def open_delivery(session: Session, *, identity_id: uuid.UUID,
                  application_id: uuid.UUID) -> ProvisioningOperation | None:
    """A deliver_access operation of the identity there that has not finished yet."""
    return session.scalars(
        select(ProvisioningOperation)
        .where(ProvisioningOperation.identity_id == identity_id,
               ProvisioningOperation.application_id == application_id,
               ProvisioningOperation.action == "deliver_access",
               ProvisioningOperation.state.not_in(TERMINAL_STATES))
        .limit(1)).one_or_none()


def applications(session: Session, ids: Collection[uuid.UUID]) -> dict[uuid.UUID, Application]:
    if not ids:
        return {}
    return {a.id: a for a in session.scalars(
        select(Application).where(Application.id.in_(list(ids))))}


def primary_accounts(session: Session, *, identity_id: uuid.UUID,
                     application_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, Account]:
    """The identity's live (not deleted) primary accounts in these applications."""
    if not application_ids:
        return {}
    return {a.application_id: a for a in session.scalars(
        select(Account).where(Account.identity_id == identity_id,
                              Account.application_id.in_(list(application_ids)),
                              Account.account_type == "primary",
                              Account.status != "deleted"))}
