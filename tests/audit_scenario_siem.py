"""The audit scenario's SIEM part: a syslog sink created, changed, deleted."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tests.audit_scenario import AuditedApi


def run_siem_scenario(api: AuditedApi) -> None:
    """Every mutating SIEM route once."""
    c = api.call
    sink = c("POST", "/siem/sinks",
             json={"name": "soc", "host": "siem.example.com", "port": 6514, "tls": True,
                   "ca_file": "/etc/idgov/siem-ca.pem", "app_name": "idgov-prod"},
             action="siem_sink.create", object_type="siem_sink", change="create",
             shows={"host": "siem.example.com"})["id"]
    c("PATCH", "/siem/sinks/{sink_id}", path={"sink_id": sink},
      json={"cursor_seq": 0, "enabled": False}, action="siem_sink.update",
      object_type="siem_sink", change="update", shows={"enabled": False},
      was={"enabled": True})
    c("DELETE", "/siem/sinks/{sink_id}", path={"sink_id": sink}, object_id=sink,
      action="siem_sink.delete", object_type="siem_sink", change="delete",
      shows={"name": "soc"})
