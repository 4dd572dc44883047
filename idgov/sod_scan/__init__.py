"""sod scan module (issue 3)."""
