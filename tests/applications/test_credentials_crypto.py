"""Credential encryption: the key file, rotation, and which settings keys count as secret."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from idgov.applications import service
from idgov.applications.crypto import (
    CredentialCipher,
    CredentialsUnreadable,
    add_secret_key,
    ensure_secret_key,
    read_keys,
)
from idgov.clock import FixedClock
from idgov.config import Settings
from idgov.db.session import unit_of_work
from idgov.types import Actor
from tests.applications.helpers import make_application

SECRET = "rotate-me-8d3e"


def test_ensure_secret_key_creates_one_private_key_once(tmp_path: Path) -> None:
    path = tmp_path / "var" / "secret.key"
    assert ensure_secret_key(path) is True
    first = path.read_bytes()
    assert path.stat().st_mode & 0o777 == 0o600
    assert ensure_secret_key(path) is False
    assert path.read_bytes() == first
    assert len(read_keys(path)) == 1


def test_cipher_round_trips_and_hides_plaintext_and_keys(tmp_path: Path) -> None:
    cipher = CredentialCipher.from_file(tmp_path / "secret.key")
    token = cipher.encrypt({"password": SECRET})
    assert SECRET.encode() not in token
    assert cipher.decrypt(token) == {"password": SECRET}
    assert "keys hidden" in repr(cipher)


def test_a_foreign_key_cannot_decrypt_and_says_so_without_secrets(tmp_path: Path) -> None:
    token = CredentialCipher.from_file(tmp_path / "a.key").encrypt({"password": SECRET})
    with pytest.raises(CredentialsUnreadable) as caught:
        CredentialCipher.from_file(tmp_path / "b.key").decrypt(token)
    assert SECRET not in str(caught.value)


def test_old_ciphertext_still_decrypts_after_a_new_key_is_prepended(tmp_path: Path) -> None:
    path = tmp_path / "secret.key"
    old_token = CredentialCipher.from_file(path).encrypt({"password": SECRET})
    old_key = read_keys(path)[0]
    add_secret_key(path)
    keys = read_keys(path)
    assert len(keys) == 2 and keys[1] == old_key
    assert path.stat().st_mode & 0o777 == 0o600
    rotated = CredentialCipher(keys)
    assert rotated.decrypt(old_token) == {"password": SECRET}
    new_token = rotated.encrypt({"password": SECRET})
    with pytest.raises(CredentialsUnreadable):
        CredentialCipher([old_key]).decrypt(new_token)


def test_reencrypting_moves_stored_credentials_to_the_newest_key(
        client: TestClient, admin_headers: dict[str, str],
        session_factory: sessionmaker[Session], settings: Settings, clock: FixedClock) -> None:
    app_id = uuid.UUID(make_application(client, admin_headers, "LDAP",
                                        credentials={"bind_password": SECRET}))
    make_application(client, admin_headers, "Manual")  # no credentials: left alone
    old_key = read_keys(settings.secret_key_path)[0]
    add_secret_key(settings.secret_key_path)
    new_key = read_keys(settings.secret_key_path)[0]
    with unit_of_work(session_factory) as session:
        count = service.reencrypt_credentials(
            session, cipher=CredentialCipher.from_file(settings.secret_key_path),
            actor=Actor.system("tests"), clock=clock)
    assert count == 1
    with unit_of_work(session_factory) as session:
        plain = service.decrypt_credentials(session, application_id=app_id,
                                            cipher=CredentialCipher([new_key]))
        assert plain == {"bind_password": SECRET}
        with pytest.raises(CredentialsUnreadable):
            service.decrypt_credentials(session, application_id=app_id,
                                        cipher=CredentialCipher([old_key]))


def test_decrypting_an_application_without_credentials_gives_nothing(
        client: TestClient, admin_headers: dict[str, str],
        session_factory: sessionmaker[Session]) -> None:
    app_id = uuid.UUID(make_application(client, admin_headers, "Manual",
                                        connector_kind="manual"))
    with unit_of_work(session_factory) as session:
        assert service.decrypt_credentials(
            session, application_id=app_id,
            cipher=CredentialCipher([Fernet.generate_key()])) == {}


@pytest.mark.parametrize(("name", "secret"), [
    ("bind_password", True),
    ("clientSecret", True),
    ("api_key", True),
    ("apikey", True),
    ("access-token", True),
    ("credentials", True),
    ("Passphrase", True),
    ("base_dn", False),
    ("keycloak_realm", False),
    ("token_endpoint", False),
    ("server_url", False),
    ("key_attribute", False),
    ("tenant_id", False),
])
def test_settings_keys_that_look_secret(name: str, secret: bool) -> None:
    assert service.looks_secret(name) is secret
