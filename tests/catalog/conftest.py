"""Catalog test fixtures: an application to hang entitlements on, and API helpers."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from tests.catalog.factories import Api, add_application


@pytest.fixture
def application_id(session_factory: sessionmaker[Session]) -> str:
    return add_application(session_factory)


@pytest.fixture
def api(client: TestClient, admin_headers: dict[str, str], application_id: str) -> Api:
    return Api(client, admin_headers, application_id)
