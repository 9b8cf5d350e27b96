"""A component version made of many large local blobs: the load for the parallel blob copy.

Used by ``bench.transport`` (10 x 100 MiB) and the transport fault tests (a few MiB each). The blobs
are pseudo-random (incompressible, different per index) and streamed to the registry, never held.
"""

from __future__ import annotations

from activities.ocm.layout import RepoBase, write_version
from activities.ocm.oci import RegistryClient, push_chunks
from landscape.ocm_example import VERSION, _descriptor, _local, pseudo_random

BULK = "example.apeiro.dev/bulk"


async def push_bulk(client: RegistryClient, base: RepoBase, *, count: int, size: int) -> list[str]:
    """Push ``BULK:VERSION`` with ``count`` local blobs of ``size`` bytes; returns their digests."""
    repo = base.component_repo(BULK)
    resources, layers, digests = [], [], []
    for i in range(count):
        digest, n = await push_chunks(client, repo, pseudo_random(size, seed=f"bulk-{i}".encode()))
        resources.append(_local(f"part-{i}", "blob", digest, "application/octet-stream"))
        layers.append({"mediaType": "application/octet-stream", "digest": digest, "size": n})
        digests.append(digest)
    desc = _descriptor(BULK, resources, [])
    desc["component"]["version"] = VERSION
    await write_version(client, base, desc, layers)
    return digests
