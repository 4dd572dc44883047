"""approvals module (issue 3)."""
