"""Configuration from environment variables prefixed ``IDGOV_`` and an optional settings file.

The settings file is named by ``IDGOV_SETTINGS_FILE`` (dotenv syntax, same ``IDGOV_`` keys).
Environment variables win over the file.
"""

from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Everything the service reads from its environment."""

    model_config = SettingsConfigDict(
        env_prefix="IDGOV_",
        env_file=os.environ.get("IDGOV_SETTINGS_FILE"),
        extra="ignore",
    )

    var_dir: Path = Field(
        default=Path("var"), description="Folder for the embedded database, keys and tokens"
    )
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; default: an SQLite file var/idgov.db"
    )
    host: str = "127.0.0.1"
    port: int = 8000
    public_url: str | None = None

    # OIDC: people sign in with bearer JWTs from this issuer.
    oidc_issuer: str | None = None
    oidc_audience: str | None = None
    oidc_jwks_url: str | None = Field(
        default=None, description="JWKS URL; default: discovered from the issuer"
    )
    oidc_identity_claim: str = "email"
    oidc_algorithms: list[str] = ["RS256", "ES256", "PS256"]
    oidc_leeway_seconds: int = 30
    oidc_jwks_cache_seconds: int = 300
    # Web sign-in (authorization code with PKCE; callback <public_url>/ui/auth/callback).
    oidc_client_id: str | None = None
    oidc_client_secret: SecretStr | None = None
    oidc_scopes: str = "openid email profile"
    ui_demo_sign_in: bool | None = Field(
        default=None, description="Offer the demo sign-in (be any person) on the web pages; "
        "default: only when no OIDC issuer is set and the service listens on loopback only")
    session_secret: SecretStr | None = Field(
        default=None, description="Key of the web session cookie; default: derived from "
        "var/secret.key")

    # Audit chain signing keys.
    audit_signing_key: Path | None = None
    audit_public_key: Path | None = None
    audit_key_id: str | None = None

    # Key that encrypts connector credentials at rest (Fernet, urlsafe base64).
    secret_key_file: Path | None = None

    api_token_default_days: int = 90

    # Access requests.
    duplicate_expiry_window_days: int = Field(
        default=14, description="A held time-bound grant ending within this many days may be "
        "requested again (a renewal); otherwise the request is a duplicate")
    expiry_warning_days: int = Field(
        default=7, description="Warn the beneficiary and manager this long before a "
        "time-bound grant ends")
    escalation_extension_hours: int = Field(
        default=48, description="A step escalated to the next manager is due again after this")

    # Notifications by email (the in-app list works without them).
    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_from: str = "idgov@localhost"
    smtp_starttls: bool = False
    smtp_ssl: bool = False
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_timeout_seconds: float = 10.0
    notification_max_attempts: int = 5

    # Provisioning engine (see idgov/provisioning/engine.py).
    embedded_worker: bool = Field(
        default=False, description="Run one provisioning worker thread inside the web process "
        "(idgov serve turns it on unless --no-worker)")
    provisioning_retry_base_seconds: float = 30
    provisioning_retry_cap_seconds: float = 3600
    provisioning_max_attempts: int = 8
    provisioning_breaker_threshold: int = 5
    provisioning_breaker_cooldown_seconds: float = 60
    provisioning_lease_seconds: float = 300
    provisioning_batch_size: int = 1000
    provisioning_parallel_calls: int = 4
    provisioning_grant_many_max: int = 500

    # Periodic jobs run by the workers (idgov/provisioning/periodic.py): no cron needed.
    periodic_jobs: bool = Field(
        default=True, description="Workers (the embedded one and `idgov worker`) also run "
        "the periodic jobs: first aggregation, scheduled reconciliation, the request sweep, "
        "mail delivery")
    reconcile_interval_hours: float = Field(
        default=24, ge=0, description="Reconcile each listable application (report only) "
        "this often; 0 disables")
    sweep_interval_minutes: float = Field(
        default=15, ge=0, description="Run the request sweep (escalations, expiry warnings, "
        "expiries, task escalations) this often; 0 disables")

    lifecycle_interval_minutes: float = Field(
        default=5, ge=0, description="Apply due HR lifecycle events (prehires starting, "
        "terminations taking effect, leavers' accounts deleted) this often; 0 disables")

    # Day-one access (idgov/dayone): first sign-in without a password passing through hands.
    day_one_link_days: int = Field(
        default=7, ge=1, description="A one-time link stays valid this long after the hire "
        "start (also the lifespan of a Keycloak activation email)")
    day_one_password_min_length: int = Field(default=12, ge=8)
    day_one_tap_lifetime_minutes: int = Field(
        default=480, ge=10, le=43200, description="Lifetime of an Entra temporary access pass")
    day_one_tap_usable_once: bool = False

    # Scheduled report exports (idgov/reports/tasks.py), env IDGOV_REPORT_SCHEDULES as JSON.
    report_schedules: list[dict[str, Any]] = Field(
        default_factory=list, description="Scheduled exports the workers drop into folders: "
        '[{"report": "entitlements", "params": {}, "format": "csv", "every_hours": 24, '
        '"folder": "/srv/evidence"}]')

    # Micro-certifications opened by certification's periodic job (certification/micro*.py).
    cert_sod_expiry_warning_days: int = Field(
        default=14, ge=0, description="Open a review of the conflicting access of an SoD "
        "exception this many days before the exception expires; 0 disables")
    cert_unused_days: int = Field(
        default=90, ge=0, description="Open a review of access whose account was last signed "
        "in to (as the target tells) longer ago than this; 0 disables")
    cert_review_aggregated: bool = Field(
        default=True, description="Open a review of access found on a target by aggregation "
        "(not granted through idgov)")

    @cached_property
    def resolved_database_url(self) -> str:
        """The database URL, defaulting to the embedded SQLite file."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.var_dir / 'idgov.db').as_posix()}"

    @property
    def signing_key_path(self) -> Path:
        return self.audit_signing_key or self.var_dir / "audit-signing.key"

    @property
    def public_key_path(self) -> Path:
        return self.audit_public_key or self.var_dir / "audit-signing.pub"

    @property
    def secret_key_path(self) -> Path:
        return self.secret_key_file or self.var_dir / "secret.key"

    @property
    def admin_token_path(self) -> Path:
        return self.var_dir / "admin-token"


def get_settings() -> Settings:
    """Read the settings anew (cheap; callers keep the object they need)."""
    return Settings()
