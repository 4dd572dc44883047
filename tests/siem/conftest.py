"""The SIEM tests use the suite's app, which serves /siem (idgov.main mounts it)."""
