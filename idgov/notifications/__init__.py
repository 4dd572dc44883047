"""notifications module (issue 3)."""
