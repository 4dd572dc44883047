"""GET /siem/events: the sealed trail as JSON Lines, paged with the X-Next-Cursor header."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from idgov.audit.repository import encode_seq_cursor
from idgov.clock import FixedClock
from idgov.db.session import unit_of_work
from idgov.models.audit import AuditEvent
from tests.audit.chain import write_chain
from tests.conftest import make_token


def _lines(resp: Any) -> list[dict[str, Any]]:
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith("application/x-ndjson")
    return [json.loads(line) for line in resp.text.splitlines()]


def _head(factory: sessionmaker[Session]) -> int:
    with unit_of_work(factory) as session:
        return session.scalar(select(AuditEvent.seq).order_by(AuditEvent.seq.desc())
                              .limit(1)) or 0


@pytest.fixture
def auditor_headers(session_factory: sessionmaker[Session],
                    clock: FixedClock) -> dict[str, str]:
    return {"Authorization": "Bearer " + make_token(session_factory, clock, "siem-puller",
                                                    ["auditor"])}


def test_pages_follow_the_cursor_in_seq_order_with_nothing_skipped_or_repeated(
        client: TestClient, auditor_headers: dict[str, str],
        session_factory: sessionmaker[Session], clock: FixedClock) -> None:
    write_chain(session_factory, clock, transactions=3, events_per_transaction=3)
    head = _head(session_factory)
    pages: list[list[dict[str, Any]]] = []
    cursor: str | None = None
    more = "true"
    while more == "true":
        resp = client.get("/siem/events", params={"limit": 4, **({"cursor": cursor} if cursor
                                                                 else {})},
                          headers=auditor_headers)
        pages.append(_lines(resp))
        cursor, more = resp.headers["X-Next-Cursor"], resp.headers["X-Has-More"]
        assert resp.headers["X-Last-Seq"] == str(pages[-1][-1]["seq"] if pages[-1] else 0)
    seqs = [e["seq"] for page in pages for e in page]
    assert seqs == list(range(1, head + 1))
    assert all(len(page) == 4 for page in pages[:-1]) and 1 <= len(pages[-1]) <= 4
    things = [e for page in pages for e in page if e["action"] == "thing.update"]
    assert [e["object"] for e in things] == [
        {"type": "thing", "id": f"t{t}-{e}"} for t in range(3) for e in range(3)]
    first = things[0]
    assert first["actor"] == {"type": "system", "id": None, "name": "audit-tests"}
    assert (first["before"], first["after"], first["context"]) == (
        {"n": 0}, {"n": 1, "note": "café"}, {"tx": 0})
    assert first["occurred_at"] == "2026-01-15T09:00:00+00:00"
    assert first["privileged"] is False
    assert len(first["hash"]) == 64 and len(first["prev_hash"]) == 64 and first["key_id"]
    assert [e["object"]["id"] for e in things if e["signature"]] == ["t0-2", "t1-2", "t2-2"]

    # At the end: no line, the same cursor back, nothing more waiting.
    resp = client.get("/siem/events", params={"cursor": cursor}, headers=auditor_headers)
    assert _lines(resp) == []
    assert (resp.headers["X-Next-Cursor"], resp.headers["X-Has-More"]) == (cursor, "false")
    # New events come after that cursor, and only they.
    write_chain(session_factory, clock, transactions=1, events_per_transaction=2, tag="n")
    later = _lines(client.get("/siem/events", params={"cursor": cursor},
                              headers=auditor_headers))
    assert [(e["seq"], e["object"]["id"]) for e in later] == [(head + 1, "n0-0"),
                                                              (head + 2, "n0-1")]


def test_unsealed_events_are_not_served(
        client: TestClient, auditor_headers: dict[str, str],
        session_factory: sessionmaker[Session], clock: FixedClock) -> None:
    write_chain(session_factory, clock, transactions=1, events_per_transaction=1)
    with unit_of_work(session_factory) as session:  # added as a row, never sealed
        session.add(AuditEvent(id=uuid.uuid4(), occurred_at=clock.now(), actor_type="system",
                               action="thing.unsealed", object_type="thing"))
    served = _lines(client.get("/siem/events", headers=auditor_headers))
    assert [e["action"] for e in served if e["action"].startswith("thing.")] == [
        "thing.update"]
    assert all(e["seq"] is not None for e in served)


@pytest.mark.parametrize("params", [
    {"cursor": "not-a-cursor"},
    {"cursor": encode_seq_cursor(10_000)},  # past the end of the trail
    {"cursor": "eyJzZXEiOiAtMX0"},  # {"seq": -1}
    {"limit": 0},
    {"limit": 5001},
    {"since": "1"},
])
def test_bad_cursor_or_limit_is_422_problem(client: TestClient, auditor_headers: dict[str, str],
                                            params: dict[str, Any]) -> None:
    resp = client.get("/siem/events", params=params, headers=auditor_headers)
    assert resp.status_code == 422, resp.text
    assert resp.headers["content-type"] == "application/problem+json"
    body = resp.json()
    assert body["status"] == 422
    field = next(iter(params))
    assert [e["field"] for e in body["errors"]] == [field]


def test_pull_needs_siem_read(client: TestClient, session_factory: sessionmaker[Session],
                              clock: FixedClock, admin_headers: dict[str, str]) -> None:
    hr = {"Authorization": "Bearer " + make_token(session_factory, clock, "hr", ["hr-system"])}
    assert client.get("/siem/events").status_code == 401
    assert client.get("/siem/events", headers=hr).status_code == 403
    assert client.get("/siem/events", headers=admin_headers).status_code == 200


def test_the_pull_endpoint_is_documented_as_json_lines(client: TestClient) -> None:
    operation = client.get("/openapi.json").json()["paths"]["/siem/events"]["get"]
    ok = operation["responses"]["200"]
    assert list(ok["content"]) == ["application/x-ndjson"]
    assert {"X-Next-Cursor", "X-Has-More"} <= set(ok["headers"])
    assert {"401", "403", "422"} <= set(operation["responses"])
