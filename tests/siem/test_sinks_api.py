"""/siem/sinks: administrators configure syslog sinks (audited); auditors only read them."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from idgov.clock import FixedClock
from idgov.db.session import unit_of_work
from idgov.models.audit import AuditEvent
from tests.audit.chain import write_chain
from tests.conftest import make_token

SINK = {"name": "soc", "host": "siem.example.com", "port": 6514, "tls": True,
        "ca_file": "/etc/idgov/siem-ca.pem", "app_name": "idgov-prod"}


def _events(factory: sessionmaker[Session], object_id: str) -> list[AuditEvent]:
    with unit_of_work(factory) as session:
        return list(session.scalars(select(AuditEvent).where(AuditEvent.object_id == object_id)
                                    .order_by(AuditEvent.seq)))


def _head(factory: sessionmaker[Session]) -> int:
    with unit_of_work(factory) as session:
        return session.scalar(select(AuditEvent.seq).order_by(AuditEvent.seq.desc())
                              .limit(1)) or 0


@pytest.fixture
def auditor(session_factory: sessionmaker[Session], clock: FixedClock) -> dict[str, str]:
    return {"Authorization": "Bearer " + make_token(session_factory, clock, "aud", ["auditor"])}


def test_administrator_creates_changes_and_deletes_a_sink_each_audited(
        client: TestClient, admin_headers: dict[str, str],
        session_factory: sessionmaker[Session], clock: FixedClock) -> None:
    write_chain(session_factory, clock, transactions=1, events_per_transaction=3)
    resp = client.post("/siem/sinks", json=SINK, headers=admin_headers)
    assert resp.status_code == 201, resp.text
    sink = resp.json()
    head = _head(session_factory)  # includes the sink's own creation event
    assert {k: sink[k] for k in (*SINK, "enabled", "cursor_seq", "behind", "last_sent_at",
                                 "last_error")} == {
        **SINK, "enabled": True, "cursor_seq": 0, "behind": head - 1, "last_sent_at": None,
        "last_error": None}
    assert client.get(f"/siem/sinks/{sink['id']}", headers=admin_headers).json()["behind"] \
        == head

    resp = client.patch(f"/siem/sinks/{sink['id']}", json={"cursor_seq": 2, "enabled": False},
                        headers=admin_headers)
    assert resp.status_code == 200, resp.text
    assert (resp.json()["cursor_seq"], resp.json()["enabled"]) == (2, False)
    assert client.delete(f"/siem/sinks/{sink['id']}", headers=admin_headers).status_code == 204
    assert client.get(f"/siem/sinks/{sink['id']}", headers=admin_headers).status_code == 404

    events = _events(session_factory, sink["id"])
    assert [(e.action, e.object_type) for e in events] == [
        ("siem_sink.create", "siem_sink"), ("siem_sink.update", "siem_sink"),
        ("siem_sink.delete", "siem_sink")]
    create, update, delete = events
    assert create.after is not None and create.after["host"] == "siem.example.com"
    assert create.after["ca_file"] == "/etc/idgov/siem-ca.pem"
    assert update.before is not None and update.after is not None
    assert (update.before["cursor_seq"], update.after["cursor_seq"]) == (0, 2)
    assert (update.before["enabled"], update.after["enabled"]) == (True, False)
    assert delete.before is not None and delete.before["name"] == "soc"
    assert delete.after is None


@pytest.mark.parametrize(("body", "field"), [
    ({**SINK, "tls": False}, "ca_file"),  # a CA file without TLS
    ({**SINK, "port": 0}, "port"),
    ({**SINK, "port": 70000}, "port"),
    ({**SINK, "app_name": "id gov"}, "app_name"),
    ({**SINK, "app_name": "x" * 49}, "app_name"),
    ({**SINK, "host": "siem example"}, "host"),
    ({**SINK, "cursor_seq": 999_999}, "cursor_seq"),  # past the end of the trail
    ({**SINK, "password": "nope"}, "password"),
])
def test_bad_sink_is_refused_with_422_and_nothing_saved(
        client: TestClient, admin_headers: dict[str, str], body: dict[str, Any],
        field: str) -> None:
    resp = client.post("/siem/sinks", json=body, headers=admin_headers)
    assert resp.status_code == 422, resp.text
    assert resp.headers["content-type"] == "application/problem+json"
    assert [e["field"] for e in resp.json()["errors"]] == [field]
    assert client.get("/siem/sinks", headers=admin_headers).json()["items"] == []


def test_bad_updates_are_refused(client: TestClient, admin_headers: dict[str, str]) -> None:
    first = client.post("/siem/sinks", json=SINK, headers=admin_headers).json()
    plain = client.post("/siem/sinks", json={"name": "plain", "host": "10.0.0.5", "port": 514},
                        headers=admin_headers).json()
    url = f"/siem/sinks/{plain['id']}"
    assert client.patch(url, json={"name": "SOC"}, headers=admin_headers).status_code == 409
    resp = client.patch(url, json={"ca_file": "/ca.pem"}, headers=admin_headers)
    assert (resp.status_code, resp.json()["errors"][0]["field"]) == (422, "ca_file")
    resp = client.patch(url, json={"host": None}, headers=admin_headers)
    assert (resp.status_code, resp.json()["errors"][0]["field"]) == (422, "host")
    resp = client.patch(url, json={"cursor_seq": 10**9}, headers=admin_headers)
    assert (resp.status_code, resp.json()["errors"][0]["field"]) == (422, "cursor_seq")
    assert client.post("/siem/sinks", json={**SINK, "name": "Soc"},
                       headers=admin_headers).status_code == 409
    assert client.get(url, headers=admin_headers).json()["host"] == "10.0.0.5"
    assert first["name"] == "soc"


def test_auditors_read_sinks_but_change_nothing(
        client: TestClient, admin_headers: dict[str, str], auditor: dict[str, str],
        session_factory: sessionmaker[Session], clock: FixedClock) -> None:
    sink = client.post("/siem/sinks", json=SINK, headers=admin_headers).json()
    url = f"/siem/sinks/{sink['id']}"
    listed = client.get("/siem/sinks", headers=auditor)
    assert listed.status_code == 200
    assert [s["name"] for s in listed.json()["items"]] == ["soc"]
    assert client.get(url, headers=auditor).json()["host"] == "siem.example.com"
    assert client.post("/siem/sinks", json={**SINK, "name": "x"},
                       headers=auditor).status_code == 403
    assert client.patch(url, json={"enabled": False}, headers=auditor).status_code == 403
    assert client.delete(url, headers=auditor).status_code == 403
    assert client.get(url, headers=admin_headers).json()["enabled"] is True
    assert [e.action for e in _events(session_factory, sink["id"])] == ["siem_sink.create"]
    hr = {"Authorization": "Bearer " + make_token(session_factory, clock, "hr", ["hr-system"])}
    assert client.get("/siem/sinks", headers=hr).status_code == 403
