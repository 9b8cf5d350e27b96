"""Redfish peers of the local landscape.

- :class:`RedfishEmulator`: sushy-emulator (fake driver) with N generated systems, fronted by
  :mod:`landscape.redfish_sidecar` (BIOS settings, firmware update tasks, fault injection, optional
  TLS). Clients use ``endpoints["url"]``; basic auth when ``username``/``password`` are given.
- :class:`RedfishStatic`: ``sushy-static`` serving a DMTF mockup directory read-only.
- :class:`ImageServer`: a plain HTTP server with a generated Garden Linux image and its SHA-256.
"""

from __future__ import annotations

import hashlib
import json
import sys
import uuid
from pathlib import Path

import httpx

from landscape.part import Part
from landscape.process import LandscapeError, ManagedProcess, find_executable, free_port

SYSTEM_NAMESPACE = uuid.UUID("6f1a3c1e-5d0b-4a43-9a3e-2f0d6ad0e001")


def fake_systems(count: int, seed: str = "apeiro") -> list[dict[str, object]]:
    """Deterministic fake systems: same seed and index -> same UUID and MAC (stable identities)."""
    systems: list[dict[str, object]] = []
    for i in range(count):
        u = uuid.uuid5(SYSTEM_NAMESPACE, f"{seed}-{i}")
        mac = "52:54:00:" + ":".join(f"{b:02x}" for b in u.bytes[:3])
        systems.append(
            {
                "uuid": str(u),
                "name": f"{seed}-node-{i:04d}",
                "power_state": "Off",
                "nics": [{"mac": mac, "ip": f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}"}],
            }
        )
    return systems


def write_self_signed(cert_path: Path, key_path: Path, host: str = "127.0.0.1") -> None:
    """A self-signed certificate for 127.0.0.1/localhost (tests pass it as the CA bundle)."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    from landscape.tls import certificate, write_certificate, write_private_key

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "apeiro-bmc")])
    names = x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address(host))])
    ca = x509.BasicConstraints(ca=True, path_length=None)
    write_certificate(cert_path, certificate(name, name, key.public_key(), key, 7, (names, False), (ca, True)))
    write_private_key(key_path, key)


class RedfishEmulator(Part):
    """sushy-emulator (fake driver, fresh state dir) behind the sidecar."""

    name = "redfish"

    def __init__(
        self,
        systems: int = 4,
        *,
        username: str | None = None,
        password: str | None = None,
        tls: bool = False,
        seed: str = "apeiro",
        callback_url: str | None = None,
        firmware_seconds: float = 2.0,
        boot_seconds: float = 1.0,
        name: str = "redfish",
        site_input: str = "serverSite",
        site_name: str = "edge-demo-1",
        backend: str | None = None,
        bmc_per_system: bool = False,
    ) -> None:
        super().__init__()
        #: One BMC (own port, own firmware inventory) per system, as real servers have; ``bmc_urls``.
        self.bmc_per_system = bmc_per_system
        self.bmc_urls: list[str] = []
        self.name = name
        #: The pipeline input this emulator's site definition fills, and the site's server backend
        #: (``ironcore``: a rack metal-operator owns; None: the product's default, redfish).
        self.site_input = site_input
        self.site_name = site_name
        self.backend = backend
        self.count = systems
        self.username = username
        self.password = password
        self.tls = tls
        self.seed = seed
        self.callback_url = callback_url
        #: A part started earlier whose endpoints["report_url"] becomes the callback URL at start.
        self.callback_from: Part | None = None
        self.firmware_seconds = firmware_seconds
        self.boot_seconds = boot_seconds
        self.systems = fake_systems(systems, seed)
        self.ca_bundle: Path | None = None
        self.password_file: Path | None = None

    @property
    def url(self) -> str:
        return self.endpoints["url"]

    def start(self, state_dir: Path) -> None:
        state_dir.mkdir(parents=True, exist_ok=True)
        emu_state = state_dir / "emulator-state"
        emu_state.mkdir(exist_ok=True)
        emu_port = free_port()
        config = {
            "SUSHY_EMULATOR_LISTEN_IP": "127.0.0.1",
            "SUSHY_EMULATOR_LISTEN_PORT": emu_port,
            "SUSHY_EMULATOR_FAKE_DRIVER": True,
            "SUSHY_EMULATOR_FAKE_SYSTEMS": self.systems,
            "SUSHY_EMULATOR_STATE_DIR": str(emu_state),
            "SUSHY_EMULATOR_VMEDIA_VERIFY_SSL": False,
        }
        if self.username:
            import bcrypt

            hashed = bcrypt.hashpw((self.password or "").encode(), bcrypt.gensalt(rounds=4)).decode()
            (state_dir / "htpasswd").write_text(f"{self.username}:{hashed}\n")
            config["SUSHY_EMULATOR_AUTH_FILE"] = str(state_dir / "htpasswd")
        conf_path = state_dir / "emulator.conf"
        conf_path.write_text(
            "".join(
                f"{k} = {json.dumps(v).replace('true', 'True').replace('false', 'False')}\n" for k, v in config.items()
            )
        )
        emu = ManagedProcess(
            "sushy-emulator",
            # sushy-emulator's own main, with its sqlite connections closed (landscape.sushy_emulator)
            [sys.executable, "-m", "landscape.sushy_emulator", "--config", str(conf_path)],
            state_dir / "emulator.log",
            cwd=Path(__file__).resolve().parents[1],
        )
        self.processes.append(emu)
        emu.start(lambda: httpx.get(f"http://127.0.0.1:{emu_port}/redfish/v1", timeout=1).status_code == 200)

        port = free_port()
        argv = [
            sys.executable,
            "-m",
            "landscape.redfish_sidecar",
            "--upstream",
            f"http://127.0.0.1:{emu_port}",
            "--port",
            str(port),
            "--firmware-seconds",
            str(self.firmware_seconds),
            "--boot-seconds",
            str(self.boot_seconds),
        ]
        if self.username:
            (state_dir / "password").write_text(self.password or "")
            (state_dir / "password").chmod(0o600)
            self.password_file = state_dir / "password"
            argv += ["--username", self.username, "--password-file", str(state_dir / "password")]
        bmc_ports: list[int] = []
        while self.bmc_per_system and len(bmc_ports) < len(self.systems):
            candidate = free_port()
            if candidate != port and candidate not in bmc_ports:
                bmc_ports.append(candidate)
        if bmc_ports:
            argv += ["--bmc-ports", ",".join(map(str, bmc_ports))]
        if self.callback_from is not None:
            self.callback_url = self.callback_from.endpoints["report_url"]
        if self.callback_url:
            argv += ["--callback-url", self.callback_url]
        scheme = "http"
        if self.tls:
            cert, key = state_dir / "bmc.crt", state_dir / "bmc.key"
            write_self_signed(cert, key)
            argv += ["--certfile", str(cert), "--keyfile", str(key)]
            self.ca_bundle = cert
            scheme = "https"
        side = ManagedProcess(
            "redfish sidecar", argv, state_dir / "sidecar.log", cwd=Path(__file__).resolve().parents[1]
        )
        self.processes.append(side)
        url = f"{scheme}://127.0.0.1:{port}"
        side.start(lambda: httpx.get(f"{url}/redfish/v1", timeout=1, verify=False).status_code == 200)
        self.endpoints = {"url": url, "emulator": f"http://127.0.0.1:{emu_port}"}
        self.bmc_urls = [f"{scheme}://127.0.0.1:{p}" for p in bmc_ports]
        if self.bmc_urls:
            self.endpoints["bmc_urls"] = ",".join(self.bmc_urls)
        if self.ca_bundle:
            self.endpoints["ca_bundle"] = str(self.ca_bundle)

    def inject(self, **faults: object) -> None:
        """Set faults on the sidecar (see :mod:`landscape.redfish_sidecar`); no arguments clears them."""
        httpx.post(f"{self.url}/_apeiro/faults", json=faults, timeout=5, verify=False).raise_for_status()

    def boots(self) -> list[dict[str, object]]:
        data: list[dict[str, object]] = httpx.get(f"{self.url}/_apeiro/boots", timeout=5, verify=False).json()
        return data

    @property
    def password_ref(self) -> str | None:
        """A `file:` reference to the password (workers on this host resolve it; no env, no history)."""
        return f"file:{self.password_file}" if self.password_file else None

    def site_definition(self, name: str | None = None) -> dict[str, object]:
        """A site definition (as JSON data) for this emulated BMC, credentials by reference."""
        name = name or self.site_name
        bmcs = [{"url": u, "name": f"{name}-bmc-{i}"} for i, u in enumerate(self.bmc_urls)]
        site: dict[str, object] = {"name": name, "bmcs": bmcs or [{"url": self.url, "name": f"{name}-bmc"}]}
        if self.backend:
            site["backend"] = self.backend
        if self.username and self.password_ref:
            site["credentials"] = {"bmc": {"username": self.username, "password_ref": self.password_ref}}
            site["default_credentials"] = "bmc"
        if self.ca_bundle:
            site["tls"] = {"ca_bundle": str(self.ca_bundle)}
        return site

    def pipeline_inputs(self) -> dict[str, object]:
        """`serverSite` for the edge-site / server-site pipelines: this BMC, credentials by reference."""
        return {self.site_input: self.site_definition()} if self.endpoints else {}

    def env(self) -> dict[str, str]:
        if self.site_input != "serverSite":
            return {}  # a second rack: the APEIRO_REDFISH_* variables name the main one
        out = {"APEIRO_REDFISH_URL": self.endpoints.get("url", "")}
        if self.username and self.password_ref:
            out["APEIRO_REDFISH_USERNAME"] = self.username
            out["APEIRO_REDFISH_PASSWORD_REF"] = self.password_ref
        if self.ca_bundle:
            out["APEIRO_REDFISH_CA_BUNDLE"] = str(self.ca_bundle)
        return out


class RedfishStatic(Part):
    """sushy-static serving a mockup directory (e.g. the DMTF public-rackmount1 mockup)."""

    name = "redfish-static"

    def __init__(self, mockup_dir: Path) -> None:
        super().__init__()
        self.mockup_dir = mockup_dir

    def start(self, state_dir: Path) -> None:
        if not self.mockup_dir.is_dir():
            raise LandscapeError(f"mockup directory {self.mockup_dir} does not exist")
        port = free_port()
        proc = ManagedProcess(
            "sushy-static",
            [
                str(find_executable("sushy-static")),
                "--mockup-files",
                str(self.mockup_dir),
                "--interface",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            state_dir / "sushy-static.log",
        )
        self.processes.append(proc)
        url = f"http://127.0.0.1:{port}"
        proc.start(lambda: httpx.get(f"{url}/redfish/v1", timeout=1).status_code == 200)
        self.endpoints = {"url": url}


def server_parts(
    temporal: Part,
    systems: int = 4,
    *,
    username: str = "admin",
    password: str | None = None,
    tls: bool = False,
    ironcore_systems: int = 0,
) -> list[Part]:
    """The server lifecycle's peers for `apeiro dev up` / `make demo`, in start order: the OS report-in
    relay (signals Temporal), the emulated BMC whose simulated OS calls the relay, the image server.
    Without a password a random one is generated (the site definition refers to its file).
    ``ironcore_systems``: a second emulated BMC with that many systems, for a rack IronCore's
    metal-operator owns (pipeline input ``ironcoreSite``, backend ironcore)."""
    import secrets

    from landscape.os_callback import OsCallbackRelay

    relay = OsCallbackRelay(temporal=temporal)
    emu = RedfishEmulator(systems, username=username, password=password or secrets.token_urlsafe(12), tls=tls)
    emu.callback_from = relay
    parts: list[Part] = [relay, emu]
    if ironcore_systems:
        parts.append(
            RedfishEmulator(
                ironcore_systems,
                username=username,
                password=secrets.token_urlsafe(12),
                tls=tls,
                seed="ironcore",
                name="redfish-ironcore",
                site_input="ironcoreSite",
                site_name="edge-demo-1-ironcore",
                backend="ironcore",
            )
        )
    return [*parts, ImageServer()]


def generate_image(path: Path, size_mib: int = 4, version: str = "1592.0") -> str:
    """Write a deterministic stand-in for a Garden Linux ISO and its `.sha256`; return the digest."""
    h = hashlib.sha256()
    block = hashlib.sha256(f"gardenlinux-{version}".encode()).digest() * 32768  # 1 MiB
    with path.open("wb") as f:
        header = f"Garden Linux {version} amd64 (generated by the Apeiro landscape)\n".encode()
        f.write(header)
        h.update(header)
        for _ in range(size_mib):
            f.write(block)
            h.update(block)
    digest = h.hexdigest()
    path.with_name(path.name + ".sha256").write_text(f"{digest}  {path.name}\n")
    return digest


class ImageServer(Part):
    """Serves a generated Garden Linux image over HTTP; endpoints give its URL and SHA-256."""

    name = "images"

    def __init__(self, size_mib: int = 4, version: str = "1592.0") -> None:
        super().__init__()
        self.size_mib = size_mib
        self.version = version

    def start(self, state_dir: Path) -> None:
        root = state_dir / "www"
        root.mkdir(parents=True, exist_ok=True)
        image_name = f"gardenlinux-{self.version}-amd64.iso"
        digest = generate_image(root / image_name, self.size_mib, self.version)
        # Firmware images for the sidecar's SimpleUpdate (component-version naming).
        (root / "bios-2.0.0.bin").write_bytes(b"BIOS 2.0.0\n")
        (root / "bmc-1.1.0.bin").write_bytes(b"BMC 1.1.0\n")
        port = free_port()
        proc = ManagedProcess(
            "image server",
            [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", "--directory", str(root), str(port)],
            state_dir / "images.log",
        )
        self.processes.append(proc)
        base = f"http://127.0.0.1:{port}"
        proc.start(lambda: httpx.get(f"{base}/{image_name}.sha256", timeout=1).status_code == 200)
        self.endpoints = {"url": f"{base}/{image_name}", "sha256": digest, "base": base}

    def pipeline_inputs(self) -> dict[str, object]:
        """`gardenLinuxImage` ({url, sha256}) for the edge-site / server-site pipelines."""
        if not self.endpoints:
            return {}
        return {"gardenLinuxImage": {"url": self.endpoints["url"], "sha256": self.endpoints["sha256"]}}

    def env(self) -> dict[str, str]:
        return {
            "APEIRO_IMAGE_URL": self.endpoints.get("url", ""),
            "APEIRO_IMAGE_SHA256": self.endpoints.get("sha256", ""),
        }


def main() -> None:
    """Run an emulated site by hand: emulator + sidecar + image server until Ctrl-C."""
    import argparse
    import os
    import tempfile
    import time

    from landscape.landscape import Landscape

    ap = argparse.ArgumentParser(description="emulated Redfish site for the server lifecycle")
    ap.add_argument("--systems", type=int, default=4)
    ap.add_argument("--tls", action="store_true")
    ap.add_argument("--username")
    ap.add_argument("--password-env", help="environment variable with the password the emulator accepts")
    ap.add_argument("--state-dir", type=Path)
    args = ap.parse_args()
    password = os.environ.get(args.password_env, "") if args.password_env else None
    emu = RedfishEmulator(args.systems, username=args.username, password=password, tls=args.tls)
    state = args.state_dir or Path(tempfile.mkdtemp(prefix="apeiro-redfish-"))
    land = Landscape([emu, ImageServer()], state_dir=state)
    with land.running():
        print(json.dumps({p.name: p.endpoints for p in land.parts}, indent=2), flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
