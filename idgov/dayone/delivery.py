"""The target side of a ``deliver_access`` operation, run by the provisioning engine outside
any transaction: the target's own mechanism when it has one (an activation email), otherwise
what the one-time link will do there (set a password, issue a temporary access pass).

No database here: the engine's call threads run this; the core-side step (the link, the
manager's notification) is :func:`idgov.dayone.service.complete_delivery`, in the
transaction that records the outcome.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from connectors.base import (
    CAN_ACTIVATION_EMAIL,
    AccountRef,
    ActivationEmail,
    Connector,
    first_access_method,
)
from connectors.errors import NotSupported

DEFAULT_LINK_DAYS = 7


@dataclass(frozen=True)
class DeliveryOptions:
    """What the settings say about day-one delivery (read where the settings are)."""

    link_days: int = DEFAULT_LINK_DAYS
    base_url: str = "http://127.0.0.1:8000"

    @property
    def lifespan_seconds(self) -> int:
        """How long an activation email's link stays valid: as long as a one-time link."""
        return self.link_days * 86400

    @classmethod
    def from_settings(cls, settings: Any) -> DeliveryOptions:
        """From ``day_one_link_days`` and ``public_url`` (else ``http://host:port``)."""
        days = int(getattr(settings, "day_one_link_days", DEFAULT_LINK_DAYS) or
                   DEFAULT_LINK_DAYS)
        public = getattr(settings, "public_url", None)
        base = str(public).rstrip("/") if public else (
            f"http://{getattr(settings, 'host', '127.0.0.1')}:"
            f"{getattr(settings, 'port', 8000)}")
        return cls(link_days=max(1, days), base_url=base)


@dataclass(frozen=True)
class Delivered:
    """The target delivered first access itself (``method``: ``activation_email``)."""

    method: str


@dataclass(frozen=True)
class ThroughLink:
    """The target has no mechanism of its own: the identity's one-time link gains the
    application, redeemed with ``method`` (``set_password`` or ``temporary_access_pass``)."""

    method: str
    options: DeliveryOptions


def deliver(connector: Connector, ref: AccountRef,
            options: DeliveryOptions) -> Delivered | ThroughLink:
    """Deliver first access on the target, or say what the link must do there.

    Raises the connector's errors (a person without an email address on an emailing target
    is a DataError), and NotSupported when the target has no first-access way at all: a
    person of the resolution group hands access over then.
    """
    method = first_access_method(connector)
    if method == CAN_ACTIVATION_EMAIL and isinstance(connector, ActivationEmail):
        connector.send_activation_email(ref, lifespan_seconds=options.lifespan_seconds)
        return Delivered(method)
    if method is None:
        raise NotSupported(f"the {connector.kind} connector has no way to deliver first "
                           "access (no activation email, temporary access pass or password)")
    return ThroughLink(method, options)
