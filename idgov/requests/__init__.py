"""requests module (issue 3)."""
