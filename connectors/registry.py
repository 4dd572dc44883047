"""Connector kinds to classes, imported only when first used.

The core names a kind (``Application.connector_kind``) and gets a class; it never imports a
concrete connector module itself (an import-linter contract).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from connectors.base import Connector

# kind -> "module:Class"
KINDS: dict[str, str] = {
    "ldap": "connectors.ldap:LdapConnector",
    "keycloak": "connectors.keycloak:KeycloakConnector",
    "entra": "connectors.entra:EntraConnector",
    "manual": "connectors.manual:ManualConnector",
    "memory": "connectors.memory:MemoryConnector",
}


def register(kind: str, target: str) -> None:
    """Add or replace a kind (``"package.module:Class"``)."""
    KINDS[kind] = target


def connector_class(kind: str) -> type[Any]:
    """The class of ``kind``; KeyError for an unknown kind."""
    module_name, _, class_name = KINDS[kind].partition(":")
    cls: type[Any] = getattr(importlib.import_module(module_name), class_name)
    return cls


def build(kind: str, settings: Mapping[str, Any], credentials: Mapping[str, Any]) -> Connector:
    """A connector of ``kind`` for one application."""
    instance: Connector = connector_class(kind)(settings=settings, credentials=credentials)
    return instance
