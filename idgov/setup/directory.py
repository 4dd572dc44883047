"""A local OpenLDAP ``slapd``: the embedded demo's directory, and the tests' and benchmarks'.

``Slapd(folder)`` writes a ``slapd.conf`` (no cn=config) into ``folder``, starts the server on
a free port of 127.0.0.1 with an mdb database (``dbnosync``: tests do not need durability),
the memberOf and referential-integrity overlays when the modules are installed, and the
suffix, ``ou=people``, ``ou=groups`` and ``ou=disabled``. ``stop()`` and ``start()`` again on
the same data simulate an outage; ``pause()``/``resume()`` (SIGSTOP/SIGCONT) a server that
accepts connections but does not answer. ``ldapadd``, ``ldapmodify`` and ``ldapsearch`` run the
real ldap-utils binaries, so that tests check the directory with a client other than the
connector under test.

``idgov serve`` runs one for the demo's LDAP application when slapd is installed (data in
``var/demo-ldap``, stopped with the server; see :func:`demo_directory`). The tests' fixture is in
``tests/slapd.py``.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from idgov.applications.crypto import CredentialCipher, CredentialsUnreadable
from idgov.config import Settings
from idgov.db.session import make_engine
from idgov.models import Application, Entitlement

SCHEMA_DIR = Path("/etc/ldap/schema")
MODULE_DIR = Path("/usr/lib/ldap")
SCHEMAS = ("core", "cosine", "inetorgperson", "nis")
START_TIMEOUT_S = 15.0


@dataclass
class Entry:
    """An entry as ``ldapsearch`` printed it; attribute names keep the server's spelling,
    ``get`` looks them up case-insensitively."""

    dn: str
    attributes: dict[str, list[str]] = field(default_factory=dict)

    def get(self, name: str) -> list[str]:
        for key, values in self.attributes.items():
            if key.lower() == name.lower():
                return values
        return []


def ssha(password: str) -> str:
    """``{SSHA}`` of ``password`` as slapd.conf's rootpw takes it (no clear text on disk)."""
    salt = secrets.token_bytes(8)
    digest = hashlib.sha1(password.encode() + salt).digest()  # noqa: S324 - slapd's SSHA
    return "{SSHA}" + base64.b64encode(digest + salt).decode()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def available() -> bool:
    return shutil.which("slapd") is not None or Path("/usr/sbin/slapd").exists()


def _binary(name: str) -> str:
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin")
    if found is None:
        raise FileNotFoundError(name)
    return found


class Slapd:
    """One slapd process over one data folder."""

    def __init__(self, folder: Path, *, suffix: str = "dc=example,dc=com",
                 rootpw: str = "root-secret", overlays: bool = True,
                 tls: tuple[Path, Path] | None = None, base_ous: bool = True,
                 port: int = 0, durable: bool = False) -> None:
        self.folder = folder
        self.suffix = suffix
        self.rootdn = f"cn=admin,{suffix}"
        self.rootpw = rootpw
        self.overlays = overlays and (MODULE_DIR / "memberof.la").exists() \
            and (MODULE_DIR / "refint.la").exists()
        self.tls = tls  # (certificate chain file, key file): StartTLS offered when given
        self.base_ous = base_ous
        self.port = port
        self.durable = durable
        self.process: subprocess.Popen[bytes] | None = None
        self.data_dir = folder / "data"
        self.conf_file = folder / "slapd.conf"
        self.log_file = folder / "slapd.log"
        self._initialised = False

    # -- lifecycle -------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"ldap://127.0.0.1:{self.port}"

    @property
    def people(self) -> str:
        return f"ou=people,{self.suffix}"

    @property
    def groups(self) -> str:
        return f"ou=groups,{self.suffix}"

    @property
    def disabled(self) -> str:
        return f"ou=disabled,{self.suffix}"

    def _config(self) -> str:
        lines = [f"include {SCHEMA_DIR / name}.schema" for name in SCHEMAS]
        lines += [f"pidfile {self.folder / 'slapd.pid'}",
                  f"argsfile {self.folder / 'slapd.args'}",
                  f"modulepath {MODULE_DIR}", "moduleload back_mdb"]
        if self.overlays:
            lines += ["moduleload memberof", "moduleload refint"]
        if self.tls is not None:
            cert, key = self.tls
            lines += [f"TLSCertificateFile {cert}", f"TLSCertificateKeyFile {key}"]
        lines += ["sizelimit unlimited", "database mdb", f"suffix \"{self.suffix}\"",
                  f"rootdn \"{self.rootdn}\"", f"rootpw {ssha(self.rootpw)}",
                  f"directory {self.data_dir}", "maxsize 1073741824",
                  *([] if self.durable else ["dbnosync"]),
                  "index objectClass eq", "index uid,cn,mail eq,sub",
                  "index member,uniqueMember eq", "index employeeNumber eq"]
        if self.overlays:
            lines += ["index memberOf eq",
                      "overlay memberof", "memberof-group-oc groupOfNames",
                      "memberof-member-ad member", "memberof-memberof-ad memberOf",
                      "memberof-refint TRUE",
                      "overlay refint", "refint_attributes member uniqueMember"]
        return "\n".join(lines) + "\n"

    def start(self) -> None:
        """Start (or restart on the same data) and wait until it accepts connections."""
        if self.process is not None:
            return
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.conf_file.touch(mode=0o600)
        self.conf_file.write_text(self._config())
        self._initialised = self._initialised or any(self.data_dir.glob("*.mdb"))
        if not self.port:
            self.port = free_port()
        with self.log_file.open("ab") as log:
            self.process = subprocess.Popen(  # noqa: S603 - our own slapd binary and config
                [_binary("slapd"), "-f", str(self.conf_file), "-h", self.url, "-d", "0"],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self._wait_until_listening()
        if not self._initialised:
            self._initialised = True
            if self.base_ous:
                self.ldapadd(self._base_ldif())

    def _wait_until_listening(self) -> None:
        assert self.process is not None
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.process = None
                raise RuntimeError(f"slapd exited at start: {self.log_file.read_text()[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.01)
        self.stop()
        raise RuntimeError(f"slapd did not listen in time: {self.log_file.read_text()[-2000:]}")

    def stop(self) -> None:
        """SIGTERM and wait; the data stays for a later ``start()``."""
        if self.process is None:
            return
        process, self.process = self.process, None
        if process.poll() is None:
            process.send_signal(signal.SIGCONT)
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)

    def pause(self) -> None:
        """Freeze the process: connections are accepted by the kernel, nothing answers."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def _base_ldif(self) -> str:
        rdn_value = self.suffix.split(",")[0].split("=", 1)[1]
        blocks = [f"dn: {self.suffix}\nobjectClass: dcObject\nobjectClass: organization\n"
                  f"dc: {rdn_value}\no: {rdn_value}\n"]
        for ou in ("people", "groups", "disabled"):
            blocks.append(f"dn: ou={ou},{self.suffix}\nobjectClass: organizationalUnit\n"
                          f"ou: {ou}\n")
        return "\n".join(blocks)

    # -- ldap-utils ------------------------------------------------------------------
    def _auth_args(self) -> list[str]:
        return ["-x", "-H", self.url, "-D", self.rootdn, "-w", self.rootpw]

    def _run(self, tool: str, args: list[str], stdin: str | None = None,
             check: bool = True) -> subprocess.CompletedProcess[str]:
        # A local server with a throwaway certificate at most: ldap-utils need not check it.
        env = {**os.environ, "LDAPTLS_REQCERT": "never"}
        command = [_binary(tool), *self._auth_args(), *args]
        done = subprocess.run(command, input=stdin,  # noqa: S603 - ldap-utils, our arguments
                              capture_output=True, text=True, env=env, check=False)
        if check and done.returncode != 0:
            raise RuntimeError(f"{tool} failed ({done.returncode}): {done.stderr.strip()}")
        return done

    def ldapadd(self, ldif: str) -> None:
        self._run("ldapadd", [], stdin=ldif)

    def ldapmodify(self, ldif: str) -> None:
        self._run("ldapmodify", [], stdin=ldif)

    def ldapmodify_file(self, path: Path) -> None:
        """Apply an LDIF file of changes (``changetype`` records) with ``ldapmodify -f``."""
        self._run("ldapmodify", ["-f", str(path)])

    def ldapsearch(self, base: str, filter: str = "(objectClass=*)",
                   attrs: list[str] | tuple[str, ...] = (), scope: str = "sub") -> list[Entry]:
        """Entries under ``base`` matching ``filter`` (a missing base gives an empty list)."""
        done = self._run("ldapsearch", ["-LLL", "-o", "ldif-wrap=no", "-s", scope, "-b", base,
                                        filter, *attrs], check=False)
        if done.returncode == 32:  # noSuchObject
            return []
        if done.returncode != 0:
            raise RuntimeError(f"ldapsearch failed ({done.returncode}): {done.stderr.strip()}")
        return parse_ldif(done.stdout)

    def entry(self, dn: str, attrs: list[str] | tuple[str, ...] = ()) -> Entry | None:
        found = self.ldapsearch(dn, attrs=attrs, scope="base")
        return found[0] if found else None

    # -- seeding ---------------------------------------------------------------------
    def add_group(self, name: str, members: list[str] | tuple[str, ...] = (), *,
                  object_class: str = "groupOfNames") -> str:
        """A group under ou=groups; groupOfNames needs a member: the group itself stands in
        when ``members`` is empty (the connector's documented placeholder)."""
        dn = f"cn={name},{self.groups}"
        attribute = "member" if object_class == "groupOfNames" else "uniqueMember"
        values = list(members) or [dn]
        lines = [f"dn: {dn}", f"objectClass: {object_class}", f"cn: {name}"]
        lines += [f"{attribute}: {value}" for value in values]
        self.ldapadd("\n".join(lines) + "\n")
        return dn

    def ensure_groups(self, dns: list[str]) -> None:
        """Create the groups named by ``dns`` under ou=groups that do not exist yet (each
        holding itself as the placeholder member the connector uses for an empty group)."""
        wanted = [dn for dn in dns if dn.lower().endswith("," + self.groups.lower())]
        existing = {e.dn.lower() for e in self.ldapsearch(self.groups,
                                                          "(objectClass=groupOfNames)",
                                                          ["cn"], scope="one")}
        blocks = [f"dn: {dn}\nobjectClass: groupOfNames\ncn: {dn.split(',')[0].split('=', 1)[1]}"
                  f"\nmember: {dn}\n" for dn in wanted if dn.lower() not in existing]
        if blocks:
            self.ldapadd("\n".join(blocks))

    def add_person(self, uid: str, attributes: Mapping[str, str] | None = None, *,
                   ou: str = "people") -> str:
        dn = f"uid={uid},ou={ou},{self.suffix}"
        attrs = {"cn": uid, "sn": uid, **(attributes or {})}
        lines = [f"dn: {dn}", "objectClass: inetOrgPerson", f"uid: {uid}"]
        lines += [f"{key}: {value}" for key, value in attrs.items()]
        self.ldapadd("\n".join(lines) + "\n")
        return dn


def parse_ldif(text: str) -> list[Entry]:
    """``ldapsearch -LLL -o ldif-wrap=no`` output to entries (base64 values decoded)."""
    entries: list[Entry] = []
    current: Entry | None = None
    for line in text.splitlines():
        if not line.strip():
            current = None
            continue
        if line.startswith("#"):
            continue
        if line.startswith(" ") and current is not None:  # continuation, should wrap be on
            continue
        name, _, rest = line.partition(":")
        if rest.startswith(": "):
            value = base64.b64decode(rest[2:]).decode("utf-8")
        else:
            value = rest[1:] if rest.startswith(" ") else rest
        if name == "dn":
            current = Entry(dn=value)
            entries.append(current)
        elif current is not None:
            current.attributes.setdefault(name, []).append(value)
    return entries


@contextmanager
def demo_directory(settings: Settings) -> Iterator[Slapd | None]:
    """Run the demo's directory for as long as the block lasts, when there is one to run.

    There is one when an application's settings say ``embedded_directory`` (the demo's LDAP
    application), the database and its credentials can be read, and slapd is installed. Its
    data lives in ``var/demo-ldap`` and survives restarts; the groups of the application's
    entitlements are created at start when missing. Otherwise nothing runs (None): the
    application's target is then unreachable, its health says so, and its provisioning
    operations wait in the queue.
    """
    found = _embedded_application(settings)
    if found is None or not available():
        yield None
        return
    url, suffix, bind_dn, password, groups = found
    port = urlsplit(url).port or 389
    server = Slapd(settings.var_dir / "demo-ldap", suffix=suffix, rootpw=password, port=port,
                   durable=True, overlays=True)
    server.rootdn = bind_dn
    server.start()
    try:
        server.ensure_groups(groups)
        yield server
    finally:
        server.stop()


def _embedded_application(settings: Settings
                          ) -> tuple[str, str, str, str, list[str]] | None:
    """(url, suffix, bind DN, bind password, group DNs) of the application whose directory
    this process should run, or None."""
    if not settings.secret_key_path.exists():
        return None
    engine = make_engine(settings.resolved_database_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(select(Application.id, Application.settings,
                                       Application.credentials_encrypted)
                                .where(Application.connector_kind == "ldap")).all()
            for app_id, app_settings, sealed in rows:
                if not (app_settings or {}).get("embedded_directory") or sealed is None:
                    continue
                credentials = CredentialCipher.from_file(settings.secret_key_path).decrypt(sealed)
                groups = list(conn.scalars(select(Entitlement.native_id)
                                           .where(Entitlement.application_id == app_id)))
                return (str(app_settings["url"]), str(app_settings["base_dn"]),
                        str(app_settings["bind_dn"]), str(credentials["bind_password"]), groups)
    except (SQLAlchemyError, CredentialsUnreadable, KeyError):
        return None  # no database yet, not migrated, or no readable credentials
    finally:
        engine.dispose()
    return None
