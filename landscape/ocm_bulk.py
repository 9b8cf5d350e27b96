"""A component version made of many large local blobs: the load for the parallel blob copy.

Used by ``bench.transport`` (10 x 100 MiB) and the transport fault tests (a few MiB each). The blobs
are pseudo-random (incompressible, different per index) and streamed to the registry, never held.
Written with the landscape's own OCI/OCM writer (:mod:`landscape.ocm_example`), never the product's.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import httpx

from landscape.ocm_example import VERSION, Pusher, _descriptor, _local, pseudo_random, write_version

BULK = "example.apeiro.dev/bulk"


async def push_bulk(source: str, *, count: int, size: int) -> list[str]:
    """Push ``BULK:VERSION`` with ``count`` local blobs of ``size`` bytes to the repository base
    ``source`` (``http://host:port/prefix``, no authentication); returns their digests."""
    parts = urlsplit(source)
    async with httpx.AsyncClient(base_url=f"{parts.scheme}://{parts.netloc}", timeout=120) as http:
        push = Pusher(http, parts.path)
        repo = push.component_repo(BULK)
        resources, layers, digests = [], [], []
        for i in range(count):
            digest, n = await push.put_chunks(repo, pseudo_random(size, seed=f"bulk-{i}".encode()))
            resources.append(_local(f"part-{i}", "blob", digest, "application/octet-stream"))
            layers.append({"mediaType": "application/octet-stream", "digest": digest, "size": n})
            digests.append(digest)
        desc = _descriptor(BULK, resources, [])
        desc["component"]["version"] = VERSION
        await write_version(push, desc, layers)
    return digests
