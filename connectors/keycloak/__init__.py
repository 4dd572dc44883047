"""The Keycloak connector (python-keycloak against the Keycloak Admin REST API)."""

from connectors.keycloak.connector import KeycloakConnector

__all__ = ["KeycloakConnector"]
