"""``ironcore.claim_server`` / ``ironcore.release_server``: provisioning through metal-operator.

The activity creates the ``ServerClaim`` (image, power, ignition secret, ``serverRef`` or
``serverSelector``; ``fieldValidation=Strict``), waits for metal-operator to bind it and power the
server, and returns the bound server. It never touches the Server or its BMC. A claim that stays
unbound (no Available server matches) is deleted and reported as non-retryable ``ClaimUnbound``; a
server metal-operator reports in Error fails the claim (deleted, ``ServerError``). Releasing deletes
the claim (a missing claim is already released).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.registration.ironcore import GROUP, VERSION, IronCoreRegistrar, api_client_from_env
from definitions.server_claims import ClaimRequest, ClaimResult, ReleaseRequest


class ClaimActivities:
    def __init__(self, api: Any = None, poll_interval: float = 0.5) -> None:
        self._api = api
        self.poll_interval = poll_interval

    @property
    def api(self) -> Any:
        if self._api is None:
            from kubernetes import client

            self._api = client.CustomObjectsApi(api_client_from_env())
        return self._api

    def all(self) -> list[Callable[..., object]]:
        return [self.claim_server, self.release_server]

    @staticmethod
    def _beat(what: str) -> None:
        if activity.in_activity():
            activity.heartbeat(what)

    def _get_claim(self, req: ClaimRequest | ReleaseRequest) -> dict[str, Any] | None:
        from kubernetes.client.exceptions import ApiException

        try:
            obj: dict[str, Any] = self.api.get_namespaced_custom_object(
                GROUP, VERSION, req.namespace, "serverclaims", req.name
            )
            return obj
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise IronCoreRegistrar._error(exc, f"get serverclaims/{req.name}") from None

    def _delete(self, req: ClaimRequest | ReleaseRequest) -> bool:
        from kubernetes.client.exceptions import ApiException

        try:
            self.api.delete_namespaced_custom_object(GROUP, VERSION, req.namespace, "serverclaims", req.name)
            return True
        except ApiException as exc:
            if exc.status == 404:
                return False
            raise IronCoreRegistrar._error(exc, f"delete serverclaims/{req.name}") from None

    @activity.defn(name="ironcore.claim_server")
    def claim_server(self, req: ClaimRequest) -> ClaimResult:
        from kubernetes.client.exceptions import ApiException

        spec: dict[str, Any] = {"image": req.image, "power": req.power}
        if req.ignition_secret:
            spec["ignitionSecretRef"] = {"name": req.ignition_secret}
        if req.server:
            spec["serverRef"] = {"name": req.server}
        elif req.selector:
            spec["serverSelector"] = {"matchLabels": dict(req.selector)}
        created = False
        if self._get_claim(req) is None:
            body = {
                "apiVersion": f"{GROUP}/{VERSION}",
                "kind": "ServerClaim",
                "metadata": {"name": req.name, "namespace": req.namespace, "labels": {"apeiro.io/managed": "true"}},
                "spec": spec,
            }
            try:
                self.api.create_namespaced_custom_object(
                    GROUP, VERSION, req.namespace, "serverclaims", body, field_validation="Strict"
                )
                created = True
            except ApiException as exc:
                if exc.status != 409:
                    raise IronCoreRegistrar._error(exc, f"create serverclaims/{req.name}") from None
        where = f"ServerClaim {req.namespace}/{req.name}"
        wanted = f"server {req.server}" if req.server else f"a server with labels {req.selector or '{}'}"
        deadline = time.monotonic() + req.bind_timeout_seconds
        while True:
            self._beat(f"waiting for {where} to be bound")
            claim = self._get_claim(req)
            if claim is None:
                raise ApplicationError(
                    f"{where} was deleted while waiting for it to be bound", type="ClaimDeleted", non_retryable=True
                )
            server_name = ((claim.get("spec") or {}).get("serverRef") or {}).get("name")
            if (claim.get("status") or {}).get("phase") == "Bound" and server_name:
                break
            if time.monotonic() > deadline:
                self._delete(req)
                raise ApplicationError(
                    f"{where} stayed {(claim.get('status') or {}).get('phase') or 'unbound'} for "
                    f"{req.bind_timeout_seconds:.0f}s: no Available server matches ({wanted}); the claim was "
                    "deleted",
                    type="ClaimUnbound",
                    non_retryable=True,
                )
            time.sleep(self.poll_interval)
        deadline = time.monotonic() + req.power_timeout_seconds
        while True:
            self._beat(f"waiting for server {server_name} to be powered {req.power}")
            server: dict[str, Any] = self.api.get_cluster_custom_object(GROUP, VERSION, "servers", server_name)
            status = server.get("status") or {}
            if status.get("state") == "Error":
                self._delete(req)
                raise ApplicationError(
                    f"metal-operator reports Server {server_name} (claimed by {where}) in Error; the claim was deleted",
                    type="ServerError",
                    non_retryable=True,
                )
            if status.get("powerState") == req.power:
                return ClaimResult(claim=req.name, server=server_name, power_state=req.power, created=created)
            if time.monotonic() > deadline:
                raise ApplicationError(
                    f"Server {server_name} (claimed by {where}) did not power {req.power} within "
                    f"{req.power_timeout_seconds:.0f}s (powerState {status.get('powerState')!r})",
                    type="ServerPowerTimeout",
                    non_retryable=True,
                )
            time.sleep(self.poll_interval)

    @activity.defn(name="ironcore.release_server")
    def release_server(self, req: ReleaseRequest) -> bool:
        """Delete the claim; metal-operator powers the server off and makes it Available again."""
        return self._delete(req)
