"""The /audit API: the trail in chain order with filters and a cursor, one event, verification."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from idgov.clock import FixedClock
from tests.audit.chain import json_param, write_chain
from tests.conftest import START, make_token


def _all_pages(client: TestClient, headers: dict[str, str], **params: Any) -> list[list[dict]]:
    pages: list[list[dict]] = []
    cursor = None
    while True:
        query = dict(params, **({"cursor": cursor} if cursor else {}))
        resp = client.get("/audit/events", params=query, headers=headers)
        assert resp.status_code == 200, resp.text
        body = resp.json()
        pages.append(body["items"])
        cursor = body["next_cursor"]
        if cursor is None:
            return pages


def test_events_come_in_seq_order_page_by_page(
        client: TestClient, admin_headers: dict[str, str],
        session_factory: sessionmaker[Session], clock: FixedClock) -> None:
    write_chain(session_factory, clock, transactions=3, events_per_transaction=3)
    pages = _all_pages(client, admin_headers, object_type="thing", limit=4)
    assert [len(p) for p in pages] == [4, 4, 1]
    seqs = [e["seq"] for page in pages for e in page]
    assert seqs == sorted(seqs) and len(set(seqs)) == 9
    first = pages[0][0]
    assert first["after"] == {"n": 1, "note": "café"}
    assert len(first["hash"]) == 64 and first["key_id"]
    # The last event of each transaction carries the block signature.
    signed = [e["object_id"] for page in pages for e in page if e["signature"]]
    assert signed == ["t0-2", "t1-2", "t2-2"]


def test_events_filter_by_object_actor_action_and_time(
        client: TestClient, admin_headers: dict[str, str],
        session_factory: sessionmaker[Session], clock: FixedClock) -> None:
    write_chain(session_factory, clock, transactions=1, events_per_transaction=2, tag="a")
    clock.advance(timedelta(hours=1))
    write_chain(session_factory, clock, transactions=1, events_per_transaction=2, tag="b")

    def ids(**params: Any) -> list[str]:
        return [e["object_id"] for page in _all_pages(client, admin_headers, **params)
                for e in page]

    assert ids(object_type="thing", object_id="b0-1") == ["b0-1"]
    assert ids(action="thing.update") == ["a0-0", "a0-1", "b0-0", "b0-1"]
    assert ids(object_type="api_token") != []
    later = (START + timedelta(minutes=30)).isoformat()
    assert ids(object_type="thing", **{"from": later}) == ["b0-0", "b0-1"]
    assert ids(object_type="thing", to=later) == ["a0-0", "a0-1"]
    assert ids(actor_id="nobody") == []


def test_one_event_by_id_and_unknown_id_is_404(
        client: TestClient, admin_headers: dict[str, str]) -> None:
    listed = client.get("/audit/events", params={"action": "api_token.create"},
                        headers=admin_headers).json()["items"]
    event = client.get(f"/audit/events/{listed[0]['id']}", headers=admin_headers)
    assert event.status_code == 200
    assert event.json() == listed[0]
    # The token's secret never enters the trail.
    assert "secret_hash" not in (event.json()["after"] or {})
    missing = client.get("/audit/events/00000000-0000-0000-0000-000000000001",
                         headers=admin_headers)
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("application/problem+json")


def test_bad_cursor_unknown_filter_and_naive_time_are_422(
        client: TestClient, admin_headers: dict[str, str]) -> None:
    bad_cursor = client.get("/audit/events", params={"cursor": "nonsense"},
                            headers=admin_headers)
    assert bad_cursor.status_code == 422
    assert bad_cursor.json()["errors"][0]["field"] == "cursor"
    assert client.get("/audit/events", params={"colour": "red"},
                      headers=admin_headers).status_code == 422
    assert client.get("/audit/events", params={"from": "2026-01-01T00:00:00"},
                      headers=admin_headers).status_code == 422


def test_verify_reports_an_intact_chain_then_the_first_bad_event(
        client: TestClient, admin_headers: dict[str, str], engine: Engine,
        session_factory: sessionmaker[Session], clock: FixedClock) -> None:
    write_chain(session_factory, clock, transactions=2, events_per_transaction=2)
    intact = client.get("/audit/verify", headers=admin_headers)
    assert intact.status_code == 200
    body = intact.json()
    assert body["ok"] is True, body["problems"]
    assert body["events"] == body["last_seq"] == body["head_seq"]
    assert body["first_bad"] is None

    victim = client.get("/audit/events", params={"object_id": "t1-0"},
                        headers=admin_headers).json()["items"][0]
    with engine.begin() as conn:
        conn.execute(text(f"UPDATE audit_events SET after = {json_param(conn, 'v')} "
                          "WHERE seq = :s"), {"v": '{"n": 99}', "s": victim["seq"]})
    broken = client.get("/audit/verify", headers=admin_headers).json()
    assert broken["ok"] is False
    assert broken["first_bad"] == {"kind": "hash_mismatch", "seq": victim["seq"],
                                   "event_id": victim["id"],
                                   "message": broken["first_bad"]["message"]}


def test_auditor_reads_the_trail_and_others_may_not(
        client: TestClient, session_factory: sessionmaker[Session], clock: FixedClock) -> None:
    auditor = {"Authorization": "Bearer " + make_token(session_factory, clock, "aud",
                                                       ["auditor"])}
    hr = {"Authorization": "Bearer " + make_token(session_factory, clock, "hr", ["hr-system"])}
    assert client.get("/audit/events", headers=auditor).status_code == 200
    assert client.get("/audit/verify", headers=auditor).json()["ok"] is True
    for path in ("/audit/events", "/audit/verify",
                 "/audit/events/00000000-0000-0000-0000-000000000001"):
        assert client.get(path, headers=hr).status_code == 403
        assert client.get(path).status_code == 401


def test_audit_routes_document_their_errors(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert {"401", "403", "422"} <= set(paths["/audit/events"]["get"]["responses"])
    assert "404" in paths["/audit/events/{event_id}"]["get"]["responses"]
    verify = paths["/audit/verify"]["get"]
    assert "first_bad" in verify["description"]
    params = {p["name"] for p in paths["/audit/events"]["get"]["parameters"]}
    assert {"from", "to", "object_type", "object_id", "actor_id", "action", "cursor",
            "limit"} <= params
