"""People: identities, their manager hierarchy and their effective access."""
