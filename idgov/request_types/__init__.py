"""request types module (issue 3)."""
