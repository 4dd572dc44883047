"""Emulators of services that cannot run on these machines (Keycloak, Microsoft Graph), served
over real HTTP so that the connectors use their real client libraries unchanged."""
