"""The Shoot manifest for a cluster definition (pure; unit-tested)."""

from __future__ import annotations

from typing import Any

from definitions.cluster import ClusterSpec


def shoot_manifest(cluster: ClusterSpec) -> dict[str, Any]:
    workers = []
    for pool in cluster.workers:
        machine: dict[str, Any] = {"type": pool.machine_type, "image": {"name": pool.image_name}}
        if pool.image_version:
            machine["image"]["version"] = pool.image_version
        worker: dict[str, Any] = {
            "name": pool.name,
            "machine": machine,
            "minimum": pool.minimum,
            "maximum": pool.maximum,
        }
        if pool.zones:
            worker["zones"] = list(pool.zones)
        if pool.kubernetes_version:
            worker["kubernetes"] = {"version": pool.kubernetes_version}
        workers.append(worker)
    networking: dict[str, Any] = {"type": cluster.networking_type}
    if cluster.nodes_cidr:
        networking["nodes"] = cluster.nodes_cidr
    metadata: dict[str, Any] = {"name": cluster.name, "namespace": cluster.project_namespace}
    if cluster.labels:
        metadata["labels"] = dict(cluster.labels)
    return {
        "apiVersion": "core.gardener.cloud/v1beta1",
        "kind": "Shoot",
        "metadata": metadata,
        "spec": {
            "cloudProfile": {"kind": "CloudProfile", "name": cluster.cloud_profile},
            "region": cluster.region,
            "credentialsBindingName": cluster.credentials_binding,
            "kubernetes": {"version": cluster.kubernetes_version},
            "networking": networking,
            "provider": {"type": cluster.provider_type, "workers": workers},
            "maintenance": {
                "timeWindow": {"begin": cluster.maintenance.begin, "end": cluster.maintenance.end},
                "autoUpdate": {"kubernetesVersion": False, "machineImageVersion": False},
                "confineSpecUpdateRollout": cluster.confine_spec_update_rollout,
            },
        },
    }
