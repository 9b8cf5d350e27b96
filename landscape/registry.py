"""OCI registries for the landscape: Debian's `docker-registry` (CNCF distribution 2.8).

Two usual instances: ``source`` (plain HTTP, anonymous) and ``site`` (TLS with a CA generated here,
htpasswd basic auth with bcrypt). Each picks a free loopback port and keeps its storage under the
state directory. Workers reach them through the environment :meth:`RegistryPart.env` exports:

- ``APEIRO_REGISTRY_<NAME>_URL``       e.g. ``https://127.0.0.1:41234``
- ``APEIRO_REGISTRY_<NAME>_CA``        PEM bundle to trust (TLS instances)
- ``APEIRO_REGISTRY_<NAME>_USERNAME`` / ``..._PASSWORD``  (htpasswd instances; pass the password
  to transports as the reference ``env:APEIRO_REGISTRY_<NAME>_PASSWORD``)
"""

from __future__ import annotations

import ipaddress
import secrets
import ssl
from pathlib import Path

import bcrypt
import httpx
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from landscape.part import Part
from landscape.process import LandscapeError, ManagedProcess, find_executable, free_port
from landscape.tls import certificate, write_certificate, write_private_key


def write_tls_material(state_dir: Path, host: str = "127.0.0.1") -> tuple[Path, Path, Path]:
    """A CA and a server certificate for ``host`` (and localhost). Returns (ca, cert, key) paths."""
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Apeiro landscape registry CA")])
    ca = certificate(
        ca_name, ca_name, ca_key.public_key(), ca_key, 30, (x509.BasicConstraints(ca=True, path_length=0), True)
    )
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    names = x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(host)), x509.DNSName("localhost")])
    cert = certificate(subject, ca_name, key.public_key(), ca_key, 30, (names, False))
    paths = (state_dir / "ca.pem", state_dir / "server.pem", state_dir / "server.key")
    write_certificate(paths[0], ca)
    write_certificate(paths[1], cert)
    write_private_key(paths[2], key)
    paths[2].chmod(0o600)
    return paths


def htpasswd_line(username: str, password: str) -> str:
    # distribution uses Go's bcrypt; cost 4 keeps every authenticated request fast on 2 cores.
    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=4)).decode()
    return f"{username}:{hashed.replace('$2b$', '$2y$', 1)}\n"


class RegistryPart(Part):
    """One `docker-registry serve` process on a loopback port chosen at start."""

    def __init__(
        self,
        name: str = "registry",
        *,
        tls: bool = False,
        username: str | None = None,
        password: str | None = None,
        port: int | None = None,
    ) -> None:
        super().__init__()
        self.name = name
        self.tls = tls
        self.username = username
        self.password = password if password is not None else (secrets.token_urlsafe(12) if username else None)
        self.port = port
        self.ca_path: Path | None = None

    @property
    def url(self) -> str:
        return self.endpoints["url"]

    def _env_prefix(self) -> str:
        return "APEIRO_REGISTRY_" + self.name.upper().replace("-", "_")

    def start(self, state_dir: Path) -> None:
        state_dir.mkdir(parents=True, exist_ok=True)
        self.port = self.port or free_port()
        storage = state_dir / "storage"
        storage.mkdir(exist_ok=True)
        lines = [
            "version: 0.1",
            "log: {level: warn, accesslog: {disabled: true}}",
            "storage:",
            f"  filesystem: {{rootdirectory: {storage}}}",
            "  delete: {enabled: true}",
            "  maintenance: {uploadpurging: {enabled: false}}",
            "http:",
            f"  addr: 127.0.0.1:{self.port}",
            f"  secret: {secrets.token_hex(16)}",
            "  headers: {X-Content-Type-Options: [nosniff]}",
        ]
        scheme = "http"
        if self.tls:
            self.ca_path, cert, key = write_tls_material(state_dir)
            lines += ["  tls:", f"    certificate: {cert}", f"    key: {key}"]
            scheme = "https"
        if self.username:
            htpasswd = state_dir / "htpasswd"
            htpasswd.write_text(htpasswd_line(self.username, self.password or ""))
            lines += ["auth:", "  htpasswd:", "    realm: apeiro-registry", f"    path: {htpasswd}"]
        config = state_dir / "config.yml"
        config.write_text("\n".join(lines) + "\n")
        exe = (
            find_executable("docker-registry")
            if not Path("/usr/bin/docker-registry").exists()
            else Path("/usr/bin/docker-registry")
        )
        proc = ManagedProcess(f"registry {self.name}", [str(exe), "serve", str(config)], state_dir / "registry.log")
        self.processes.append(proc)
        base = f"{scheme}://127.0.0.1:{self.port}"
        verify: ssl.SSLContext | bool = ssl.create_default_context(cafile=str(self.ca_path)) if self.ca_path else True

        def ready() -> bool:
            # /v2/ answers 200 (anonymous) or 401 (auth required) once the registry serves.
            return httpx.get(base + "/v2/", verify=verify, timeout=1.0).status_code in (200, 401)

        try:
            proc.start(ready, timeout=20)
        except LandscapeError as exc:
            raise LandscapeError(f"{exc}\n(is Debian's docker-registry installed? see debian-packages.txt)") from None
        self.endpoints = {"url": base, "host": f"127.0.0.1:{self.port}"}
        if self.ca_path:
            self.endpoints["ca_bundle"] = str(self.ca_path)
        if self.username:
            self.endpoints["username"] = self.username

    def env(self) -> dict[str, str]:
        if not self.endpoints:
            return {}
        p = self._env_prefix()
        out = {f"{p}_URL": self.url}
        if self.ca_path:
            out[f"{p}_CA"] = str(self.ca_path)
        if self.username:
            out[f"{p}_USERNAME"] = self.username
            out[f"{p}_PASSWORD"] = self.password or ""
        return out


def default_registries() -> list[RegistryPart]:
    """The landscape's pair: an open source registry and a TLS + htpasswd site registry."""
    return [RegistryPart("source"), RegistryPart("site", tls=True, username="apeiro")]
