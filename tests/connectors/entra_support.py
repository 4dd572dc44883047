"""Fixtures and helpers shared by the Entra connector's tests (:mod:`test_entra`) and the
Graph emulator's documented-example tests (:mod:`test_entra_emulator`): a test PKI, a seeded
Graph emulator served over HTTPS, and connectors built against it.

Test modules bind the fixtures they use to module names (pytest finds fixtures in a module's
namespace)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from connectors.base import AccountSpec
from connectors.entra import EntraConnector
from tests.emulators.graph import GraphEmulator, serve_graph
from tests.emulators.serve import ServedApp
from tests.emulators.tls import TestPki, make_pki

DOMAIN = "contoso.example"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TestPki:
    return make_pki(tmp_path_factory.mktemp("graph-pki"))


@pytest.fixture
def emulator() -> GraphEmulator:
    emu = GraphEmulator(domains=(DOMAIN,))
    emu.finance = emu.add_group("Finance")
    emu.sales = emu.add_group("Sales")
    emu.payroll = emu.add_service_principal(
        "Payroll", {"Payroll.Clerk": "Clerk", "Payroll.Admin": "Administrator"})
    return emu


@pytest.fixture
def served(emulator: GraphEmulator, pki: TestPki) -> Iterator[ServedApp]:
    with serve_graph(emulator, pki) as served:
        yield served


def settings_for(served: ServedApp, emulator: GraphEmulator, pki: TestPki,
                 **extra: Any) -> dict[str, Any]:
    return {"authority": f"{served.url}/{emulator.tenant_id}", "client_id": emulator.client_id,
            "graph_url": f"{served.url}/v1.0", "ca_file": str(pki.ca_file),
            "app_role_resources": [emulator.payroll],
            **extra}


def make_connector(served: ServedApp, emulator: GraphEmulator, pki: TestPki, *,
                   secret: str | None = None, **extra: Any) -> EntraConnector:
    return EntraConnector(settings=settings_for(served, emulator, pki, **extra),
                          credentials={"client_secret": secret or emulator.client_secret})


@pytest.fixture
def build(served: ServedApp, emulator: GraphEmulator,
          pki: TestPki) -> Iterator[Callable[..., EntraConnector]]:
    """Connectors for this test's emulator, closed before the server stops (an idle
    keep-alive connection would hold its shutdown)."""
    built: list[EntraConnector] = []

    def make(**extra: Any) -> EntraConnector:
        built.append(make_connector(served, emulator, pki, **extra))
        return built[-1]

    yield make
    for conn in built:
        conn.close()


@pytest.fixture
def connector(build: Callable[..., EntraConnector]) -> EntraConnector:
    return build()


def group(emulator: GraphEmulator, name: str) -> str:
    return f"group:{getattr(emulator, name)}"


def app_role(emulator: GraphEmulator, value: str) -> str:
    sp = emulator.payroll
    return f"app-role:{sp}:{emulator.app_role_id(sp, value)}"


def spec(name: str, employee_id: str = "E1") -> AccountSpec:
    return AccountSpec(username=f"{name}@{DOMAIN}",
                       attributes={"displayName": name.title(), "givenName": name.title(),
                                   "surname": "Tester", "mail": f"{name}@mail.example",
                                   "employeeId": employee_id})
