"""RFC 5424 syslog messages for audit events, and their transport over TCP or TLS.

Formatting is pure. A message reads::

    <85>1 2026-01-15T09:00:00.000000Z idgov-host idgov 4242 assignment.grant
      [idgov@32473 seq="17" id="..." action="assignment.grant" actor_type="identity" ...
      privileged="true" hash="..."] \\ufeff{"seq":17,...}

- PRI = facility * 8 + severity; the facility is ``authpriv`` (10: security and
  authorisation messages), the severity follows the action (:func:`severity_of`).
- TIMESTAMP is the event's ``occurred_at`` in UTC with microseconds; HOSTNAME the sending
  host; APP-NAME the sink's ``app_name``; PROCID the sending process id; MSGID the action
  (cut to the 32 characters RFC 5424 allows; the full action is in the structured data).
- STRUCTURED-DATA is one element, SD-ID ``idgov@32473`` (32473 is the private enterprise
  number RFC 5612 reserves for documentation: the element is ours, not an IANA one), with
  the event's ``seq``, ``id``, ``action``, actor, object, ``privileged`` and ``hash``.
  Parameter values escape ``"``, ``\\`` and ``]`` with a backslash (RFC 5424 section 6.3.3).
- MSG is the event as one line of JSON (the same document the pull endpoint serves), in
  UTF-8 after the byte order mark RFC 5424 asks for.

Transport: octet-counting framing (``MSG-LEN SP SYSLOG-MSG``, RFC 6587 section 3.4.1 and
RFC 5425 section 4.3) over one TCP connection, wrapped in TLS (``ssl``, certificate and host
name verified against the sink's CA file or the system CAs) when the sink asks for it.
"""

from __future__ import annotations

import json
import os
import socket
import ssl
from collections.abc import Mapping
from contextlib import suppress
from datetime import UTC, datetime
from typing import Any

FACILITY_AUTHPRIV = 10
SEVERITY_WARNING = 4
SEVERITY_NOTICE = 5
SEVERITY_INFO = 6
SD_ID = "idgov@32473"
BOM = "\ufeff"
NILVALUE = "-"

# Actions that report a fault of the service or a target.
_WARNING_ACTIONS = frozenset({"target.breaker_open", "campaign.launch_failed",
                              "provisioning.compensate", "provisioning.rolled_back"})
# Changes to who may do what, in the service or on the targets, and to the feed itself.
_NOTICE_PREFIXES = ("assignment.", "role.", "service_role.", "api_token.",
                    "service_principal.", "sod_exception.", "sod_rule.", "delegation.",
                    "siem_sink.", "approval_authority.")
_NOTICE_ACTIONS = frozenset({"identity.terminate", "application.credentials_reencrypt",
                             "scim.user_delete", "entitlement.update", "entitlement.delete"})


def severity_of(action: str, *, privileged: bool) -> int:
    """warning (4) for faults, notice (5) for privileged events and changes of access or
    of security settings, informational (6) for everything else."""
    if action in _WARNING_ACTIONS:
        return SEVERITY_WARNING
    if privileged or action in _NOTICE_ACTIONS or action.startswith(_NOTICE_PREFIXES):
        return SEVERITY_NOTICE
    return SEVERITY_INFO


def _printable(text: str, limit: int) -> str:
    """Header fields are PRINTUSASCII (33-126); anything else becomes ``_``."""
    cleaned = "".join(c if 33 <= ord(c) <= 126 else "_" for c in text)[:limit]
    return cleaned or NILVALUE


def escape_param(value: str) -> str:
    """An SD-PARAM value with ``\\``, ``"`` and ``]`` escaped (RFC 5424 section 6.3.3)."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")


def structured_data(params: Mapping[str, Any]) -> str:
    """One SD-ELEMENT of ``params``; None values are left out, booleans are true/false."""
    parts = [SD_ID]
    for name, value in params.items():
        if value is None:
            continue
        text = ("true" if value else "false") if isinstance(value, bool) else str(value)
        parts.append(f'{name}="{escape_param(text)}"')
    return "[" + " ".join(parts) + "]"


def timestamp(moment: datetime) -> str:
    """RFC 5424 TIMESTAMP: UTC, microseconds, ``Z``."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def local_hostname() -> str:
    """This host's name as HOSTNAME allows it."""
    return _printable(socket.gethostname(), 255)


def format_message(document: Mapping[str, Any], *, app_name: str, hostname: str,
                   procid: int | None = None) -> bytes:
    """The RFC 5424 message (without framing) of one event document (see
    :func:`idgov.siem.service.event_document`)."""
    action = str(document["action"])
    privileged = bool(document.get("privileged"))
    pri = FACILITY_AUTHPRIV * 8 + severity_of(action, privileged=privileged)
    actor = document.get("actor") or {}
    obj = document.get("object") or {}
    sd = structured_data({
        "seq": document["seq"], "id": document["id"], "action": action,
        "actor_type": actor.get("type"), "actor_id": actor.get("id"),
        "actor_name": actor.get("name"), "object_type": obj.get("type"),
        "object_id": obj.get("id"), "privileged": privileged, "hash": document.get("hash"),
    })
    occurred = document["occurred_at"]
    moment = occurred if isinstance(occurred, datetime) else datetime.fromisoformat(occurred)
    header = " ".join([
        f"<{pri}>1", timestamp(moment), _printable(hostname, 255), _printable(app_name, 48),
        _printable(str(os.getpid() if procid is None else procid), 128),
        _printable(action, 32),
    ])
    body = json.dumps(document, separators=(",", ":"), ensure_ascii=False, default=str)
    return f"{header} {sd} {BOM}{body}".encode()


def frame(message: bytes) -> bytes:
    """Octet-counting framing: the message's length in bytes, a space, the message."""
    return str(len(message)).encode() + b" " + message


class SyslogConnection:
    """One TCP (optionally TLS) connection to a syslog receiver. Connects in the
    constructor; raises OSError (``ssl.SSLError`` is one) when it cannot."""

    def __init__(self, host: str, port: int, *, tls: bool, ca_file: str | None,
                 timeout: float) -> None:
        raw = socket.create_connection((host, port), timeout=timeout)
        try:
            if tls:
                context = ssl.create_default_context(cafile=ca_file)
                context.minimum_version = ssl.TLSVersion.TLSv1_2
                self.sock: socket.socket = context.wrap_socket(raw, server_hostname=host)
            else:
                self.sock = raw
        except BaseException:
            raw.close()
            raise

    def send(self, frames: bytes) -> None:
        """Write every byte (``sendall``: it returns once the kernel has taken them all)."""
        self.sock.sendall(frames)

    def close(self) -> None:
        with suppress(OSError):
            self.sock.close()
