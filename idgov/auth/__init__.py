"""Who may call the service: API tokens, OIDC bearer JWTs, service roles and capabilities."""
