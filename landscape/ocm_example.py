"""A generated example component, pushed to the landscape's source registry.

``example.apeiro.dev/edge-app`` (version 1.0.0) has the four kinds of content a transport must handle:

- ``image``: an OCI image (config + one layer) in its own repository, referenced by ``ociArtifact``
  access and ``ociArtifactDigest/v1``;
- ``chart``: a Helm chart tarball stored as a local blob (layer of the component version);
- ``notes``: a plain text local blob;
- a component reference to ``example.apeiro.dev/base`` (1.0.0), which carries one local blob.

Every resource has its digest, so the component can be signed and verified anywhere. ``big_blob``
adds a resource of that many (pseudo-random, generated on the fly) bytes, for the benchmark.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import gzip
import hashlib
import io
import json
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from activities.ocm.layout import OCI_MANIFEST, RepoBase, write_version
from activities.ocm.oci import RegistryClient, push_chunks, sha256_digest
from landscape.part import Part
from landscape.process import LandscapeError
from landscape.registry import RegistryPart

MAIN = "example.apeiro.dev/edge-app"
BASE = "example.apeiro.dev/base"
VERSION = "1.0.0"


def _targz(files: dict[str, bytes]) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), 0, 0o644
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue(), mtime=0)


def pseudo_random(size: int, seed: bytes = b"apeiro", piece: int = 1024 * 1024) -> Iterator[bytes]:
    """Deterministic incompressible bytes, produced piece by piece (never all in memory)."""
    block = hashlib.shake_256(seed).digest(piece)
    sent, n = 0, 0
    while sent < size:
        head = hashlib.sha256(seed + n.to_bytes(8, "big")).digest()
        chunk = (head + block[len(head) :])[: min(piece, size - sent)]
        sent += len(chunk)
        n += 1
        yield chunk


def _digest_spec(digest: str, alg: str = "genericBlobDigest/v1") -> dict[str, str]:
    return {"hashAlgorithm": "SHA-256", "normalisationAlgorithm": alg, "value": digest.split(":", 1)[1]}


def _local(name: str, rtype: str, digest: str, media: str, version: str = VERSION) -> dict[str, Any]:
    return {
        "name": name,
        "version": version,
        "type": rtype,
        "relation": "local",
        "access": {"type": "localBlob", "localReference": digest, "mediaType": media},
        "digest": _digest_spec(digest),
    }


def _descriptor(name: str, resources: list[dict[str, Any]], refs: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "meta": {"schemaVersion": "v2"},
        "component": {
            "name": name,
            "version": VERSION,
            "provider": "apeiro",
            "creationTime": "2026-01-01T00:00:00Z",
            "repositoryContexts": [],
            "sources": [],
            "componentReferences": refs,
            "resources": resources,
            "labels": [{"name": "apeiro.dev/purpose", "value": "example", "signing": True}],
        },
    }


async def push_image(
    client: RegistryClient, base: RepoBase, repo_path: str = "images/edge-app", tag: str = VERSION
) -> tuple[str, str]:
    """A minimal OCI image; returns (repository, manifest digest)."""
    repo = base.repo(repo_path)
    layer = _targz({"hello.txt": b"hello from the edge\n"})
    layer_digest = await client.put_blob(repo, layer)
    diff_id = sha256_digest(gzip.decompress(layer))
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {"Cmd": ["/hello"]},
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        },
        separators=(",", ":"),
    ).encode()
    config_digest = await client.put_blob(repo, config)
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": config_digest,
                "size": len(config),
            },
            "layers": [
                {
                    "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": layer_digest,
                    "size": len(layer),
                }
            ],
        },
        indent=2,
    ).encode()  # indented on purpose: copies must keep these exact bytes
    return repo, await client.put_manifest(repo, tag, manifest, OCI_MANIFEST)


async def push_example(client: RegistryClient, base: RepoBase, *, big_blob: int = 0) -> list[tuple[str, str]]:
    """Push base and edge-app to ``base``; returns [(name, version)] (the main component last)."""
    base_repo = base.component_repo(BASE)
    settings = b"site-defaults: {ntp: pool.ntp.org}\n"
    settings_digest = await client.put_blob(base_repo, settings)
    await write_version(
        client,
        base,
        _descriptor(BASE, [_local("settings", "yaml", settings_digest, "application/x-yaml")], []),
        [{"mediaType": "application/x-yaml", "digest": settings_digest, "size": len(settings)}],
    )

    image_repo, image_digest = await push_image(client, base)
    main_repo = base.component_repo(MAIN)
    chart = _targz(
        {
            "edge-app/Chart.yaml": b"apiVersion: v2\nname: edge-app\nversion: 1.0.0\n",
            "edge-app/values.yaml": b"replicas: 1\n",
        }
    )
    chart_digest = await client.put_blob(main_repo, chart)
    notes = b"Edge app release notes: first release.\n"
    notes_digest = await client.put_blob(main_repo, notes)
    chart_media = "application/vnd.cncf.helm.chart.content.v1.tar+gzip"
    resources = [
        {
            "name": "image",
            "version": VERSION,
            "type": "ociImage",
            "relation": "local",
            "access": {
                "type": "ociArtifact",
                "imageReference": f"{base.host}/{image_repo}:{VERSION}@{image_digest}",
            },
            "digest": _digest_spec(image_digest, "ociArtifactDigest/v1"),
        },
        _local("chart", "helmChart", chart_digest, chart_media),
        _local("notes", "plainText", notes_digest, "text/plain"),
    ]
    layers = [
        {"mediaType": chart_media, "digest": chart_digest, "size": len(chart)},
        {"mediaType": "text/plain", "digest": notes_digest, "size": len(notes)},
    ]
    if big_blob:
        big_digest, size = await push_chunks(client, main_repo, pseudo_random(big_blob))
        resources.append(_local("payload", "blob", big_digest, "application/octet-stream"))
        layers.append({"mediaType": "application/octet-stream", "digest": big_digest, "size": size})
    refs = [{"name": "base", "componentName": BASE, "version": VERSION}]
    await write_version(client, base, _descriptor(MAIN, resources, refs), layers)
    return [(BASE, VERSION), (MAIN, VERSION)]


class OCMExamplePart(Part):
    """Pushes the example component to the source registry and makes the site's signing key.

    Start it after the two :class:`~landscape.registry.RegistryPart`s. It provides the edge-site
    pipeline's OCM inputs (``pipeline_inputs``): source and target repositories, the site registry's
    CA, and *references* to the signing key pair it generated (never the key itself).
    """

    name = "ocm-example"

    def __init__(self, source: RegistryPart, site: RegistryPart, prefix: str = "ocm") -> None:
        super().__init__()
        self.source, self.site, self.prefix = source, site, prefix
        self.key_path: Path | None = None

    def start(self, state_dir: Path) -> None:
        state_dir.mkdir(parents=True, exist_ok=True)
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.key_path = state_dir / "site-signing.pem"
        self.key_path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        self.key_path.chmod(0o600)
        (state_dir / "site-signing.pub").write_bytes(
            key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        )
        url = f"{self.source.url}/{self.prefix}"

        async def push() -> None:
            async with RegistryClient(self.source.url) as client:
                await push_example(client, RepoBase.parse(url))

        try:
            # start() is synchronous; when called under a running loop, push from a helper thread.
            with concurrent.futures.ThreadPoolExecutor(1) as pool:
                pool.submit(asyncio.run, push()).result()
        except Exception as exc:
            raise LandscapeError(f"could not push the example component to {url}: {exc}") from None
        self.endpoints = {"source": url, "component": f"{MAIN}:{VERSION}"}

    def pipeline_inputs(self) -> dict[str, object]:
        if self.key_path is None:
            return {}
        return {
            "ocmSource": f"{self.source.url}/{self.prefix}",
            "ocmTarget": f"{self.site.url}/{self.prefix}",
            "ocmTargetCa": self.site.endpoints.get("ca_bundle", ""),
            "ocmComponent": MAIN,
            "ocmVersion": VERSION,
            "ocmSigningKey": f"file:{self.key_path}",
            "ocmSigningPublicKey": f"file:{self.key_path.with_suffix('.pub')}",
        }


def ocm_parts() -> list[Part]:
    """The OCM peers of the local landscape: source and site registries and the example component."""
    source = RegistryPart("source")
    site = RegistryPart("site", tls=True, username="apeiro")
    return [source, site, OCMExamplePart(source, site)]
