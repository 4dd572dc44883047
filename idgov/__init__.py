"""idgov: an identity governance service."""

__version__ = "0.1.0"
