"""IronCore metal-operator registration (`metal.ironcore.dev/v1alpha1`, cluster-scoped), as metal-operator
expects its clients to work: the orchestrator registers each BMC as a ``BMCSecret`` + ``BMC``
(``spec.access.ip``, ``spec.protocol``, ``spec.bmcSecretRef``) and then waits for metal-operator to
discover the BMC's systems and create their ``Server`` objects (matched by ``spec.systemUUID``) and
report them Available. It never creates a Server nor writes a Server's status: metal-operator owns both.

Objects get deterministic names from the BMC URL, so a retry finds what the first attempt created
(409 -> read and update). The BMC password is resolved here, inside the activity, and only written into
the BMCSecret object: it never travels through workflow history.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import os
import re
import socket
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from temporalio.exceptions import ApplicationError

from activities.secrets import resolve_secret
from definitions.server import BmcConnection, Registration, ServerSummary, SystemInventory

#: How long metal-operator may take to discover a BMC's system and report its Server (seconds).
DISCOVERY_TIMEOUT = float(os.environ.get("APEIRO_IRONCORE_DISCOVERY_TIMEOUT", "300"))
#: Server states metal-operator reports once discovery is done.
SETTLED = ("Available", "Reserved", "Maintenance")

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


class IronCoreRegistrar:
    target = "ironcore"

    def __init__(
        self,
        api: Any = None,
        discovery_timeout: float = DISCOVERY_TIMEOUT,
        poll_interval: float = 0.5,
        heartbeat: Callable[[str], None] | None = None,
    ) -> None:
        from kubernetes import client

        self.api: Any = api or client.CustomObjectsApi(api_client_from_env())
        self.discovery_timeout = discovery_timeout
        self.poll_interval = poll_interval
        self.heartbeat = heartbeat or (lambda _: None)

    def _upsert(self, plural: str, body: dict[str, Any]) -> bool:
        """Create the object, or merge-patch its spec if it exists. Returns True if created."""
        from kubernetes.client.exceptions import ApiException

        name = body["metadata"]["name"]
        try:
            self.api.create_cluster_custom_object(GROUP, VERSION, plural, body, field_validation="Strict")
            return True
        except ApiException as exc:
            if exc.status != 409:
                raise self._error(exc, f"create {plural}/{name}") from None
        patch = {k: v for k, v in body.items() if k in ("spec", "data", "metadata")}
        patch["metadata"] = {"labels": body["metadata"].get("labels", {})}
        try:
            self.api.patch_cluster_custom_object(GROUP, VERSION, plural, name, patch, field_validation="Strict")
        except ApiException as exc:
            raise self._error(exc, f"update {plural}/{name}") from None
        return False

    @staticmethod
    def _error(exc: Any, what: str) -> ApplicationError:
        status = getattr(exc, "status", None)
        retry = status in (None, 0, 409, 429) or (status or 0) >= 500
        body = str(getattr(exc, "body", "") or "")[:500]
        return ApplicationError(
            f"IronCore API: {what} failed: HTTP {status} {getattr(exc, 'reason', '')} {body}".strip(),
            type="IronCoreApiError",
            non_retryable=not retry,
        )

    def register_bmc(self, bmc: BmcConnection) -> tuple[str, bool]:
        """BMCSecret + BMC for one BMC URL; returns the BMC's name and whether it was created."""
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
        host = parts.hostname or ""
        spec: dict[str, Any] = {
            "access": {"ip": _ip_of(host)},
            "protocol": {
                "name": "Redfish",
                "port": parts.port or (443 if parts.scheme == "https" else 80),
                "scheme": parts.scheme,
            },
            "bmcSecretRef": {"name": bmc_name},
        }
        if host != spec["access"]["ip"]:
            spec["hostname"] = host
        created = self._upsert(
            "bmcs",
            {
                "apiVersion": f"{GROUP}/{VERSION}",
                "kind": "BMC",
                "metadata": {"name": bmc_name, "labels": labels},
                "spec": spec,
            },
        )
        return bmc_name, created

    def wait_for_server(self, bmc_name: str, bmc_url: str, system_uuid: str) -> dict[str, Any]:
        """metal-operator's Server for this system, once it reports it settled (Available...)."""
        from kubernetes.client.exceptions import ApiException

        deadline = time.monotonic() + self.discovery_timeout
        seen = "no Server yet"
        while True:
            self.heartbeat(f"waiting for metal-operator to discover {system_uuid} on {bmc_name}")
            try:
                listed: Any = self.api.list_cluster_custom_object(GROUP, VERSION, "servers")
                items: list[dict[str, Any]] = listed.get("items") or []
            except ApiException as exc:
                raise self._error(exc, "list servers") from None
            for obj in items:
                if str((obj.get("spec") or {}).get("systemUUID", "")).lower() != system_uuid.lower():
                    continue
                state = str((obj.get("status") or {}).get("state") or "")
                seen = f"Server {obj['metadata']['name']} is {state or 'without a state'}"
                if state == "Error":
                    raise ApplicationError(
                        f"metal-operator reports Server {obj['metadata']['name']} (system {system_uuid}, BMC "
                        f"{bmc_name} at {bmc_url}) in Error; see its conditions and events",
                        type="ServerError",
                        non_retryable=True,
                    )
                if state in SETTLED:
                    return dict(obj)
            if time.monotonic() > deadline:
                raise ApplicationError(
                    f"metal-operator did not report a Server for system {system_uuid} of BMC {bmc_name} "
                    f"({bmc_url}) within {self.discovery_timeout:.0f}s ({seen}); check the BMC's status and "
                    "that metal-operator can reach it",
                    type="ServerNotDiscovered",
                    non_retryable=True,
                )
            time.sleep(self.poll_interval)

    def register(self, server: ServerSummary, bmc: BmcConnection, inventory: SystemInventory | None) -> Registration:
        bmc_name, created = self.register_bmc(bmc)
        obj = self.wait_for_server(bmc_name, bmc.url, server.uuid or server.identity)
        return Registration(
            identity=server.identity,
            target=self.target,
            object_id=f"servers/{obj['metadata']['name']}",
            state=str((obj.get("status") or {}).get("state")),
            created=created,
        )


def _ip_of(host: str) -> str:
    """``BMC.spec.access.ip`` wants an address: a name is resolved (and kept as ``spec.hostname``)."""
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        pass
    try:
        return socket.gethostbyname(host)
    except OSError:
        raise ApplicationError(
            f"cannot resolve BMC host {host!r} to an IP address for BMC.spec.access.ip",
            type="BmcUnresolvable",
            non_retryable=True,
        ) from None
