"""A generated example component, pushed to the landscape's source registry.

``example.apeiro.dev/edge-app`` (version 1.0.0) has the four kinds of content a transport must handle:

- ``image``: an OCI image (config + one layer) in its own repository, referenced by ``ociArtifact``
  access and ``ociArtifactDigest/v1``;
- ``chart``: a Helm chart tarball stored as a local blob (layer of the component version);
- ``notes``: a plain text local blob;
- a component reference to ``example.apeiro.dev/base`` (1.0.0), which carries one local blob.

Every resource has its digest, so the component can be signed and verified anywhere. ``big_blob``
adds a resource of that many (pseudo-random, generated on the fly) bytes, for the benchmark.

The fixture is written here, independently of the product's OCM code (which it tests): the upstream
formats are spelled out by hand from OCM's specification (component descriptor v2 as YAML; the OCI
mapping of a component version: the manifest ``<base>/component-descriptors/<name>:<version>`` whose
config ``application/vnd.ocm.software.component.config.v1+json`` names the descriptor layer
``application/vnd.ocm.software.component-descriptor.v2+yaml+tar``, a tar holding
``component-descriptor.yaml``; each local blob a further layer) and pushed with plain httpx calls of
the OCI distribution API (monolithic or chunked blob uploads, manifest PUT).
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
from urllib.parse import urlsplit

import httpx
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from landscape.part import Part
from landscape.process import LandscapeError
from landscape.registry import RegistryPart

MAIN = "example.apeiro.dev/edge-app"
BASE = "example.apeiro.dev/base"
VERSION = "1.0.0"

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCM_CONFIG = "application/vnd.ocm.software.component.config.v1+json"
OCM_DESCRIPTOR_TAR = "application/vnd.ocm.software.component-descriptor.v2+yaml+tar"
CHUNK = 8 * 1024 * 1024


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class Pusher:
    """The few OCI distribution API calls the fixture needs, against an unauthenticated registry."""

    def __init__(self, http: httpx.AsyncClient, prefix: str) -> None:
        self.http, self.prefix = http, prefix.strip("/")

    def repo(self, path: str) -> str:
        return "/".join(p for p in (self.prefix, path) if p)

    def component_repo(self, name: str) -> str:
        return self.repo(f"component-descriptors/{name}")

    async def _has_blob(self, repo: str, digest: str) -> bool:
        resp = await self.http.head(f"/v2/{repo}/blobs/{digest}")
        return resp.status_code == 200

    async def _start(self, repo: str) -> str:
        resp = await self.http.post(f"/v2/{repo}/blobs/uploads/")
        resp.raise_for_status()
        return resp.headers["location"]

    async def put_blob(self, repo: str, data: bytes) -> str:
        digest = sha256_digest(data)
        if not await self._has_blob(repo, digest):
            loc = await self._start(repo)
            resp = await self.http.put(
                _with_digest(loc, digest), content=data, headers={"content-type": "application/octet-stream"}
            )
            resp.raise_for_status()
        return digest

    async def put_chunks(self, repo: str, chunks: Iterator[bytes]) -> tuple[str, int]:
        """A blob produced piece by piece, uploaded in PATCH chunks (never all in memory)."""
        hasher, size, loc = hashlib.sha256(), 0, await self._start(repo)
        buf = bytearray()
        for piece in chunks:
            hasher.update(piece)
            buf.extend(piece)
            if len(buf) >= CHUNK:
                loc = await self._patch(loc, bytes(buf), size)
                size += len(buf)
                buf.clear()
        digest = "sha256:" + hasher.hexdigest()
        resp = await self.http.put(
            _with_digest(loc, digest), content=bytes(buf), headers={"content-type": "application/octet-stream"}
        )
        resp.raise_for_status()
        return digest, size + len(buf)

    async def _patch(self, loc: str, data: bytes, offset: int) -> str:
        resp = await self.http.patch(
            loc,
            content=data,
            headers={
                "content-type": "application/octet-stream",
                "content-range": f"{offset}-{offset + len(data) - 1}",
            },
        )
        resp.raise_for_status()
        return resp.headers["location"]

    async def put_manifest(self, repo: str, tag: str, data: bytes) -> str:
        resp = await self.http.put(f"/v2/{repo}/manifests/{tag}", content=data, headers={"content-type": OCI_MANIFEST})
        resp.raise_for_status()
        return sha256_digest(data)


def _with_digest(location: str, digest: str) -> str:
    """The upload URL with ``digest`` added to the query the registry put in ``Location`` (kept)."""
    return str(httpx.URL(location).copy_merge_params({"digest": digest}))


def _targz(files: dict[str, bytes]) -> bytes:
    return gzip.compress(_tar(files), mtime=0)


def _tar(files: dict[str, bytes]) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), 0, 0o644
            tar.addfile(info, io.BytesIO(data))
    return raw.getvalue()


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


async def write_version(push: Pusher, descriptor: dict[str, Any], blob_layers: list[dict[str, Any]]) -> str:
    """The OCM OCI mapping of one component version; local blobs must be in the repository already."""
    comp = descriptor["component"]
    repo = push.component_repo(comp["name"])
    text = yaml.safe_dump(descriptor, sort_keys=False).encode()
    tar = _tar({"component-descriptor.yaml": text})
    layer = {"mediaType": OCM_DESCRIPTOR_TAR, "digest": await push.put_blob(repo, tar), "size": len(tar)}
    config = json.dumps({"componentDescriptorLayer": layer}).encode()
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCM_CONFIG, "digest": await push.put_blob(repo, config), "size": len(config)},
        "layers": [layer, *blob_layers],
    }
    # OCI tags cannot hold "+": OCM maps it to ".build-".
    return await push.put_manifest(repo, comp["version"].replace("+", ".build-"), json.dumps(manifest).encode())


async def push_image(push: Pusher, repo_path: str = "images/edge-app", tag: str = VERSION) -> tuple[str, str]:
    """A minimal OCI image; returns (repository, manifest digest)."""
    repo = push.repo(repo_path)
    layer = _targz({"hello.txt": b"hello from the edge\n"})
    layer_digest = await push.put_blob(repo, layer)
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
    config_digest = await push.put_blob(repo, config)
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
    return repo, await push.put_manifest(repo, tag, manifest)


async def push_example(source: str, *, big_blob: int = 0) -> list[tuple[str, str]]:
    """Push base and edge-app to the repository base ``source`` (``http://host:port/prefix``, a registry
    without authentication); returns [(name, version)] (the main component last)."""
    parts = urlsplit(source)
    async with httpx.AsyncClient(base_url=f"{parts.scheme}://{parts.netloc}", timeout=60) as http:
        push = Pusher(http, parts.path)
        base_repo = push.component_repo(BASE)
        settings = b"site-defaults: {ntp: pool.ntp.org}\n"
        settings_digest = await push.put_blob(base_repo, settings)
        await write_version(
            push,
            _descriptor(BASE, [_local("settings", "yaml", settings_digest, "application/x-yaml")], []),
            [{"mediaType": "application/x-yaml", "digest": settings_digest, "size": len(settings)}],
        )

        image_repo, image_digest = await push_image(push)
        main_repo = push.component_repo(MAIN)
        chart = _targz(
            {
                "edge-app/Chart.yaml": b"apiVersion: v2\nname: edge-app\nversion: 1.0.0\n",
                "edge-app/values.yaml": b"replicas: 1\n",
            }
        )
        chart_digest = await push.put_blob(main_repo, chart)
        notes = b"Edge app release notes: first release.\n"
        notes_digest = await push.put_blob(main_repo, notes)
        chart_media = "application/vnd.cncf.helm.chart.content.v1.tar+gzip"
        resources = [
            {
                "name": "image",
                "version": VERSION,
                "type": "ociImage",
                "relation": "local",
                "access": {
                    "type": "ociArtifact",
                    "imageReference": f"{parts.netloc}/{image_repo}:{VERSION}@{image_digest}",
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
            big_digest, size = await push.put_chunks(main_repo, pseudo_random(big_blob))
            resources.append(_local("payload", "blob", big_digest, "application/octet-stream"))
            layers.append({"mediaType": "application/octet-stream", "digest": big_digest, "size": size})
        refs = [{"name": "base", "componentName": BASE, "version": VERSION}]
        await write_version(push, _descriptor(MAIN, resources, refs), layers)
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

        try:
            # start() is synchronous; when called under a running loop, push from a helper thread.
            with concurrent.futures.ThreadPoolExecutor(1) as pool:
                pool.submit(asyncio.run, push_example(url)).result()
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
