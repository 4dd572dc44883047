"""provisioning module (issue 3)."""
