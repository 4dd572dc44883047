"""Database plumbing: declarative base, engine and unit of work, generic repository."""
