"""IronCore metal-operator registration: BMCSecret + BMC + Server (`metal.ironcore.dev/v1alpha1`,
cluster-scoped), with the inventory in the Server's status, through the official `kubernetes` client.

Objects get deterministic names from the BMC URL / server identity, so a retry finds what the first
attempt created (409 -> read and update). The BMC password is resolved here, inside the activity, and
only written into the BMCSecret object: it never travels through workflow history.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
from typing import Any
from urllib.parse import urlsplit

from temporalio.exceptions import ApplicationError

from activities.secrets import resolve_secret
from definitions.server import BmcConnection, Registration, ServerSummary, SystemInventory

GROUP, VERSION = "metal.ironcore.dev", "v1alpha1"


def k8s_name(prefix: str, key: str) -> str:
    slug = re.sub(r"[^a-z0-9-]+", "-", key.lower()).strip("-")[:40].strip("-")
    return f"{prefix}-{slug}-{hashlib.sha256(key.encode()).hexdigest()[:8]}"


def api_client_from_env() -> Any:
    """A kubernetes ApiClient for the IronCore metal API, first match wins:

    - ``APEIRO_IRONCORE_KUBECONFIG``: a kubeconfig file;
    - ``APEIRO_KUBE_API`` (or the landscape's ``APEIRO_KUBEAPI_URL``): the API server URL, with optional
      ``APEIRO_KUBE_TOKEN_REF`` (a secret reference), ``APEIRO_KUBE_CA`` or ``APEIRO_KUBE_INSECURE``;
    - ``APEIRO_GARDEN_KUBECONFIG``: the landscape's one API server also serves metal objects;
    - in-cluster config, else the default kubeconfig.
    """
    from kubernetes import client, config

    kubeconfig = os.environ.get("APEIRO_IRONCORE_KUBECONFIG")
    if kubeconfig:
        return config.new_client_from_config(config_file=kubeconfig)
    url = os.environ.get("APEIRO_KUBE_API") or os.environ.get("APEIRO_KUBEAPI_URL")
    if url:
        cfg = client.Configuration()
        cfg.host = url
        token_ref = os.environ.get("APEIRO_KUBE_TOKEN_REF")
        if token_ref:
            cfg.api_key = {"authorization": "Bearer " + resolve_secret(token_ref)}
        ca = os.environ.get("APEIRO_KUBE_CA")
        if ca:
            cfg.ssl_ca_cert = ca
        elif url.startswith("https://"):
            cfg.verify_ssl = os.environ.get("APEIRO_KUBE_INSECURE", "") not in ("1", "true")
        return client.ApiClient(cfg)
    garden = os.environ.get("APEIRO_GARDEN_KUBECONFIG")
    if garden:
        return config.new_client_from_config(config_file=garden)
    try:
        config.load_incluster_config()
    except config.ConfigException:
        config.load_kube_config()
    return client.ApiClient()


def server_status(summary: ServerSummary, inv: SystemInventory | None) -> dict[str, Any]:
    status: dict[str, Any] = {
        "state": "Available",
        "manufacturer": summary.manufacturer,
        "model": summary.model,
        "serialNumber": summary.serial,
        "powerState": summary.power_state,
        "networkInterfaces": [{"name": f"nic{i}", "macAddress": m} for i, m in enumerate(summary.macs)],
    }
    if inv is not None:
        status.update(
            {
                "sku": inv.sku,
                "biosVersion": inv.bios_version,
                "processors": [
                    {"id": p.id, "modelName": p.model, "cores": p.cores, "threads": p.threads}
                    for p in inv.processors or []
                ],
                "totalSystemMemory": f"{inv.memory_gib}Gi" if inv.memory_gib is not None else None,
                "storages": [
                    {"name": c.id, "drives": [{"name": d.id, "capacity": d.capacity_bytes} for d in c.drives]}
                    for c in inv.storage or []
                ],
            }
        )
    return {k: v for k, v in status.items() if v is not None}


class IronCoreRegistrar:
    target = "ironcore"

    def __init__(self, api: Any = None) -> None:
        from kubernetes import client

        self.api = api or client.CustomObjectsApi(api_client_from_env())

    def _upsert(self, plural: str, body: dict[str, Any]) -> bool:
        """Create the object, or merge-patch its spec if it exists. Returns True if created."""
        from kubernetes.client.exceptions import ApiException

        name = body["metadata"]["name"]
        try:
            self.api.create_cluster_custom_object(GROUP, VERSION, plural, body)
            return True
        except ApiException as exc:
            if exc.status != 409:
                raise self._error(exc, f"create {plural}/{name}") from None
        patch = {k: v for k, v in body.items() if k in ("spec", "data", "metadata")}
        patch["metadata"] = {"labels": body["metadata"].get("labels", {})}
        try:
            self.api.patch_cluster_custom_object(GROUP, VERSION, plural, name, patch)
        except ApiException as exc:
            raise self._error(exc, f"update {plural}/{name}") from None
        return False

    @staticmethod
    def _error(exc: Any, what: str) -> ApplicationError:
        status = getattr(exc, "status", None)
        retry = status in (None, 0, 409, 429) or (status or 0) >= 500
        return ApplicationError(
            f"IronCore API: {what} failed: HTTP {status} {getattr(exc, 'reason', '')}",
            type="IronCoreApiError",
            non_retryable=not retry,
        )

    def register(
        self, server: ServerSummary, bmc: BmcConnection, inventory: SystemInventory | None
    ) -> Registration:
        from kubernetes.client.exceptions import ApiException

        parts = urlsplit(bmc.url)
        bmc_name = k8s_name("bmc", bmc.url)
        labels = {"apeiro.io/managed": "true"}
        # metal-operator needs a BMCSecret even for a BMC without authentication (then both are empty).
        username = bmc.credentials.username if bmc.credentials else ""
        password = resolve_secret(bmc.credentials.password_ref) if bmc.credentials else ""
        self._upsert(
            "bmcsecrets",
            {
                "apiVersion": f"{GROUP}/{VERSION}",
                "kind": "BMCSecret",
                "metadata": {"name": bmc_name, "labels": labels},
                "data": {
                    "username": base64.b64encode(username.encode()).decode(),
                    "password": base64.b64encode(password.encode()).decode(),
                },
                "type": "Opaque",
            },
        )
        self._upsert(
            "bmcs",
            {
                "apiVersion": f"{GROUP}/{VERSION}",
                "kind": "BMC",
                "metadata": {"name": bmc_name, "labels": labels},
                "spec": {
                    "access": {"address": parts.hostname},
                    "protocol": {
                        "name": "Redfish",
                        "port": parts.port or (443 if parts.scheme == "https" else 80),
                        "scheme": parts.scheme,
                    },
                    "bmcSecretRef": {"name": bmc_name},
                },
            },
        )
        server_name = k8s_name("server", server.identity)
        created = self._upsert(
            "servers",
            {
                "apiVersion": f"{GROUP}/{VERSION}",
                "kind": "Server",
                "metadata": {"name": server_name, "labels": labels},
                "spec": {
                    "uuid": server.uuid or server.identity,
                    "systemUUID": server.uuid or server.identity,
                    "systemURI": server.system_path,
                    "bmcRef": {"name": bmc_name},
                },
            },
        )
        try:
            self.api.patch_cluster_custom_object_status(
                GROUP, VERSION, "servers", server_name, {"status": server_status(server, inventory)}
            )
        except ApiException as exc:
            raise self._error(exc, f"status of servers/{server_name}") from None
        return Registration(
            identity=server.identity,
            target=self.target,
            object_id=f"servers/{server_name}",
            state="Available",
            created=created,
        )
