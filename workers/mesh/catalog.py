"""The read-only `Pipeline` catalogue in every bound workspace.

The provider's catalogue is what its workers know (APEIRO_DEFINITIONS, then the shipped examples).
Through the virtual workspace the controller sees which workspaces bound the export (their
APIBindings) and keeps each one's `Pipeline` objects equal to the catalogue: missing entries are
created, edited ones are put back, entries the catalogue no longer has are deleted. Consumers can
read them (`kubectl get pipelines`), and a change a consumer makes does not last.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from definitions.mesh_manifests import LABELS, PART_OF, catalog_objects
from workers.mesh.kube import Kube, KubeError, object_path

log = logging.getLogger(__name__)
CLUSTER_ANNOTATION = "kcp.io/cluster"


def desired_catalog() -> dict[str, dict[str, Any]]:
    from definitions.library import PipelineLibrary
    from definitions.validate import parse_pipeline

    library = PipelineLibrary()
    pipelines = [parse_pipeline(library.load(name), name) for name in library.names()]
    return {o["metadata"]["name"]: o for o in catalog_objects(pipelines)}


async def bound_clusters(vw: Kube) -> set[str]:
    listed = await vw.at("*").get("/apis/apis.kcp.io/v1alpha2/apibindings")
    return {(b["metadata"].get("annotations") or {}).get(CLUSTER_ANNOTATION, "") for b in listed.get("items") or []} - {
        ""
    }


async def sync_workspace(api: Kube, desired: dict[str, dict[str, Any]]) -> int:
    """Make one workspace's catalogue equal to `desired`; returns how many writes it took."""
    path = object_path("pipelines", None)
    existing = {o["metadata"]["name"]: o for o in (await api.get(path)).get("items") or []}
    writes = 0
    for name, want in desired.items():
        have = existing.get(name)
        if have is None:
            await api.create(path, want)
            writes += 1
        elif have.get("spec") != want["spec"] or (have["metadata"].get("labels") or {}).get(PART_OF) != LABELS[PART_OF]:
            body = {**want, "metadata": {**want["metadata"], "resourceVersion": have["metadata"]["resourceVersion"]}}
            await api.put(f"{path}/{name}", body)
            writes += 1
    for name, have in existing.items():
        if name not in desired and (have["metadata"].get("labels") or {}).get(PART_OF) == LABELS[PART_OF]:
            await api.request("DELETE", f"{path}/{name}")
            writes += 1
    return writes


async def publish(vw: Kube, interval: float) -> None:
    """Forever: the catalogue into every bound workspace, every `interval` seconds."""
    while True:
        try:
            desired = desired_catalog()
            for cluster in sorted(await bound_clusters(vw)):
                try:
                    writes = await sync_workspace(vw.at(cluster), desired)
                except KubeError as exc:
                    log.warning("catalogue for workspace %s not written: %s", cluster, exc)
                    continue
                if writes:
                    log.info("catalogue: %d change(s) in workspace %s", writes, cluster)
        except KubeError as exc:
            log.warning("catalogue: bound workspaces not listed: %s", exc)
        except Exception as exc:  # a broken definition must not stop the orders
            log.warning("catalogue not published: %s", exc)
        await asyncio.sleep(interval)
