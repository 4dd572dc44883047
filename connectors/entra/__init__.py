"""Microsoft Entra ID through msal (client credentials) and the Microsoft Graph REST API."""

from connectors.entra.connector import BatchResult, EntraConnector

__all__ = ["BatchResult", "EntraConnector"]
