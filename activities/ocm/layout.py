"""The OCM layout in an OCI registry: where a component version lives and how it is packed.

- A version of component ``acme.org/app`` under repository base ``host/prefix`` is the manifest
  ``prefix/component-descriptors/acme.org/app:<version>`` (``+`` in the version becomes
  ``.build-``, since OCI tags do not allow ``+``).
- The manifest's config (``application/vnd.ocm.software.component.config.v1+json``) points at the
  descriptor layer; the first layer is the descriptor, a tar holding ``component-descriptor.yaml``
  (``application/vnd.ocm.software.component-descriptor.v2+yaml+tar``); every local blob is a further
  layer of the same manifest, referenced by ``localBlob`` accesses through its digest.
- Resources with ``ociArtifact`` access are separate manifests in their own repositories.

We write the descriptor tar deterministically (fixed mtime, owner, mode), so the same descriptor
always gives the same layer and manifest digests: a re-run finds everything in place.
"""

from __future__ import annotations

import asyncio
import io
import json
import tarfile
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from activities.bounded import MAX_MANIFEST_BYTES, RemoteDataError, loads_strict
from activities.ocm.errors import ComponentNotFound, DigestMismatch, InvalidDescriptor
from activities.ocm.normalise import dump_descriptor, load_descriptor_data
from activities.ocm.oci import NotFound, RegistryClient, RemoteDataRejected, sha256_digest
from definitions.ocm import NORM_GENERIC_BLOB

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
COMPONENT_CONFIG = "application/vnd.ocm.software.component.config.v1+json"
DESCRIPTOR_TAR = "application/vnd.ocm.software.component-descriptor.v2+yaml+tar"
DESCRIPTOR_YAML = "application/vnd.ocm.software.component-descriptor.v2+yaml"
DESCRIPTOR_JSON = "application/vnd.ocm.software.component-descriptor.v2+json"
DESCRIPTOR_FILE = "component-descriptor.yaml"
#: Largest OCM config blob read (it holds one descriptor-layer reference: a few hundred bytes).
MAX_CONFIG_BYTES = MAX_MANIFEST_BYTES


@dataclass(frozen=True)
class RepoBase:
    """``http(s)://host:port/prefix`` split into the registry URL and the path prefix."""

    registry_url: str
    prefix: str

    @classmethod
    def parse(cls, url: str) -> RepoBase:
        parts = urlsplit(url if "://" in url else "https://" + url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise InvalidDescriptor(f"repository {url!r} must look like http(s)://host[:port][/prefix]")
        return cls(f"{parts.scheme}://{parts.netloc}", parts.path.strip("/"))

    @property
    def host(self) -> str:
        return urlsplit(self.registry_url).netloc

    def repo(self, path: str) -> str:
        return "/".join(p for p in (self.prefix, path) if p)

    def component_repo(self, name: str) -> str:
        return self.repo(f"component-descriptors/{name}")


def version_tag(version: str) -> str:
    return version.replace("+", ".build-")


def descriptor_tar(yaml_text: str) -> bytes:
    data = yaml_text.encode("utf-8")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        info = tarfile.TarInfo(DESCRIPTOR_FILE)
        info.size, info.mtime, info.mode, info.uid, info.gid = len(data), 0, 0o644, 0, 0
        tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def descriptor_from_layer(data: bytes, media_type: str) -> bytes:
    if media_type.endswith("+tar") or data[257:262] == b"ustar":
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            for member in tar.getmembers():
                if member.name.lstrip("./") == DESCRIPTOR_FILE:
                    f = tar.extractfile(member)
                    if f is not None:
                        return f.read()
        raise InvalidDescriptor(f"descriptor layer holds no {DESCRIPTOR_FILE}")
    return data


@dataclass
class StoredVersion:
    name: str
    version: str
    repo: str
    descriptor: dict[str, Any]
    manifest_digest: str
    manifest: dict[str, Any]
    #: Layers after the descriptor layer: the local blobs ({mediaType, digest, size, ...}).
    blob_layers: list[dict[str, Any]] = field(default_factory=list)


async def read_version(client: RegistryClient, base: RepoBase, name: str, version: str) -> StoredVersion:
    repo = base.component_repo(name)
    try:
        raw, _media, digest = await client.get_manifest(repo, version_tag(version))
    except NotFound:
        raise ComponentNotFound(f"component version {name}:{version} not found in {base.host}/{repo}") from None
    where = f"{base.host}/{repo}:{version}"
    try:
        # Strict and capped: the manifest was checked when read, the config blob is read here (a
        # registry could serve a 16 MiB config nested 100k deep; json.loads would recurse until it broke).
        manifest = loads_strict(raw, f"manifest {where}")
        config_raw = await client.get_blob(repo, manifest["config"]["digest"], max_size=MAX_CONFIG_BYTES)
        config = loads_strict(config_raw, f"config blob of {where}")
        if not isinstance(manifest, dict) or not isinstance(config, dict):
            raise ValueError("the manifest and its config must be JSON objects")
        layer_ref = config.get("componentDescriptorLayer") or manifest["layers"][0]
        if not isinstance(layer_ref, dict) or not isinstance(layer_ref.get("digest"), str):
            raise ValueError("the descriptor layer reference has no digest")
    except RemoteDataError as exc:
        raise RemoteDataRejected(str(exc)) from None
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        raise InvalidDescriptor(f"{base.host}/{repo}:{version} is not an OCM component version: {exc}") from None
    layer = await client.get_blob(repo, layer_ref["digest"])
    text = descriptor_from_layer(layer, layer_ref.get("mediaType", DESCRIPTOR_TAR))
    descriptor = load_descriptor_data(text)
    comp = descriptor["component"]
    if comp.get("name") != name or comp.get("version") != version:
        raise InvalidDescriptor(f"{base.host}/{repo}:{version} holds {comp.get('name')}:{comp.get('version')}")
    blobs = [lay for lay in manifest.get("layers", []) if lay.get("digest") != layer_ref["digest"]]
    return StoredVersion(name, version, repo, descriptor, digest, manifest, blobs)


async def version_exists(client: RegistryClient, base: RepoBase, name: str, version: str) -> str | None:
    return await client.head_manifest(base.component_repo(name), version_tag(version))


async def upload_descriptor(
    client: RegistryClient, base: RepoBase, descriptor: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Upload a version's descriptor layer and config blob (skipped when present): their OCI
    descriptors, for :func:`put_version_manifest`. Nothing refers to them yet, so the version does
    not appear at the target before its manifest is written."""
    repo = base.component_repo(descriptor["component"]["name"])
    tar = descriptor_tar(dump_descriptor(descriptor))
    layer = {"mediaType": DESCRIPTOR_TAR, "digest": sha256_digest(tar), "size": len(tar)}
    config = json.dumps({"componentDescriptorLayer": layer}, separators=(",", ":")).encode()
    # Both small blobs at once: each round trip here adds to a transport's wall time when it follows
    # the version's largest blob.
    _, config_digest = await asyncio.gather(client.put_blob(repo, tar), client.put_blob(repo, config))
    return layer, {"mediaType": COMPONENT_CONFIG, "digest": config_digest, "size": len(config)}


async def put_version_manifest(
    client: RegistryClient,
    base: RepoBase,
    name: str,
    version: str,
    layer: dict[str, Any],
    config: dict[str, Any],
    blob_layers: list[dict[str, Any]],
) -> str:
    """Tag the version: its manifest over the uploaded descriptor layer, config and local blobs (all
    in the repository already; the registry refuses a manifest whose blobs it lacks). The same inputs
    give the same bytes, so writing it again is harmless. Returns the manifest digest."""
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": config,
        "layers": [layer, *blob_layers],
    }
    data = json.dumps(manifest, separators=(",", ":")).encode()
    await client.put_manifest(base.component_repo(name), version_tag(version), data, OCI_MANIFEST)
    return sha256_digest(data)


async def write_version(
    client: RegistryClient, base: RepoBase, descriptor: dict[str, Any], blob_layers: list[dict[str, Any]]
) -> str:
    """Upload descriptor layer, config and manifest (local blobs must be in the repository already)."""
    comp = descriptor["component"]
    layer, config = await upload_descriptor(client, base, descriptor)
    return await put_version_manifest(client, base, comp["name"], comp["version"], layer, config, blob_layers)


@dataclass(frozen=True)
class ImageRef:
    host: str
    repo: str
    tag: str | None
    digest: str | None

    @classmethod
    def parse(cls, ref: str) -> ImageRef:
        ref = ref.split("://", 1)[-1]
        rest, _, digest = ref.partition("@")
        host, _, path = rest.partition("/")
        if not path or not ("." in host or ":" in host or host == "localhost"):
            raise InvalidDescriptor(f"image reference {ref!r} has no registry host")
        repo, tag = path, None
        last = path.rsplit("/", 1)[-1]
        if ":" in last:
            repo, _, tag = path.rpartition(":")
        return cls(host, repo, tag, digest or None)

    def __str__(self) -> str:
        s = f"{self.host}/{self.repo}"
        if self.tag:
            s += f":{self.tag}"
        if self.digest:
            s += f"@{self.digest}"
        return s


async def read_referenced_version(
    client: RegistryClient, base: RepoBase, name: str, version: str, referrer: str | None
) -> StoredVersion:
    """Read a version; when another version references it, a miss names the referrer (the sender's mistake)."""
    try:
        return await read_version(client, base, name, version)
    except ComponentNotFound as exc:
        if referrer:
            raise ComponentNotFound(
                f"missing component reference: {referrer} references {name}:{version}, "
                f"which is not in the source repository ({exc})"
            ) from None
        raise


def check_local_blob(access: dict[str, Any], digest: dict[str, Any], layers: set[str], rname: str, absent: str) -> str:
    """The layer digest a ``localBlob`` access points at, after checking it exists and matches the descriptor."""
    ref = str(access.get("localReference", "")).replace("sha256.", "sha256:", 1)
    if ref not in layers:
        raise InvalidDescriptor(f"{rname}: local blob {ref} {absent}")
    if (
        digest.get("normalisationAlgorithm") == NORM_GENERIC_BLOB
        and "sha256:" + str(digest.get("value", "")).lower() != ref
    ):
        raise DigestMismatch(
            f"{rname}: descriptor records digest {digest.get('value')} but the blob is {ref}; "
            "the blob or the descriptor was tampered with"
        )
    return ref
