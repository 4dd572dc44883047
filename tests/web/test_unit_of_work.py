"""A request's unit of work commits before its answer leaves: a client that got 201 can
read what it made at once, and a commit that fails is a 500, never a success."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, event


def test_the_commit_happens_before_the_response_starts(app: FastAPI, engine: Engine,
                                                        admin_headers: dict[str, str]) -> None:
    seen: list[str] = []

    async def recording(scope: Any, receive: Any, send: Any) -> None:
        async def watched_send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                seen.append("response")
            await send(message)

        await app(scope, receive, watched_send)

    def committed(conn: Any) -> None:
        seen.append("commit")

    event.listen(engine, "commit", committed)
    try:
        with TestClient(recording) as client:
            seen.clear()
            resp = client.post("/groups", json={"name": "Payroll"}, headers=admin_headers)
    finally:
        event.remove(engine, "commit", committed)
    assert resp.status_code == 201, resp.text
    assert seen[-1] == "response" and "commit" in seen, seen
    assert seen.index("commit") < seen.index("response"), seen
