"""Resource digests as OCM records them (``genericBlobDigest/v1``, ``ociArtifactDigest/v1``).

- ``genericBlobDigest/v1``: SHA-256 over the blob bytes. Computed while streaming, never by
  holding the blob.
- ``ociArtifactDigest/v1``: the digest of the artifact's OCI *manifest* (the bytes the registry
  serves), so it stays valid as long as the manifest is copied byte for byte.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from definitions.ocm import HASH_SHA256, NORM_GENERIC_BLOB, NORM_OCI_ARTIFACT, DigestSpec

#: OCM's older descriptors spell the hash algorithm in lower case.
SHA256_NAMES = ("SHA-256", "sha256")


def generic_blob_digest(chunks: Iterable[bytes]) -> DigestSpec:
    h = hashlib.sha256()
    for chunk in chunks:
        h.update(chunk)
    return DigestSpec(hashAlgorithm=HASH_SHA256, normalisationAlgorithm=NORM_GENERIC_BLOB, value=h.hexdigest())


def oci_artifact_digest(manifest_digest: str) -> DigestSpec:
    """``manifest_digest`` is ``sha256:<hex>`` as the registry reports it (Docker-Content-Digest)."""
    algo, _, hexval = manifest_digest.partition(":")
    if algo != "sha256" or len(hexval) != 64:
        raise ValueError(f"manifest digest {manifest_digest!r} is not a sha256 digest")
    return DigestSpec(hashAlgorithm=HASH_SHA256, normalisationAlgorithm=NORM_OCI_ARTIFACT, value=hexval)


def expected_blob_sha256(spec: DigestSpec | None) -> str | None:
    """The sha256 hex a blob must have per its resource digest, if the digest is a blob digest."""
    if spec is None or spec.normalisationAlgorithm != NORM_GENERIC_BLOB:
        return None
    if spec.hashAlgorithm not in SHA256_NAMES:
        return None
    return spec.value
