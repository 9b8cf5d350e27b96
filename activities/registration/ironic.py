"""OpenStack Ironic (CobaltCore) registration through openstacksdk: enroll a node with the redfish
driver, then manage and (optionally) provide it. Idempotent: the node is found by its name (derived
from the server identity) before anything is created, and each state move is skipped when done.
The BMC password is resolved here and goes only to Ironic's driver_info."""

from __future__ import annotations

import os
import time
from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.secrets import resolve_secret
from definitions.server import BmcConnection, ImageSpec, Registration, ServerSummary, SystemInventory

FAILED_STATES = {"deploy failed", "clean failed", "inspect failed", "error", "rescue failed"}


def node_name(identity: str) -> str:
    return f"apeiro-{identity}"[:63]


class IronicRegistrar:
    target = "ironic"

    def __init__(
        self,
        endpoint: str | None = None,
        provide: bool = True,
        conn: Any = None,
        wait_timeout_s: int = 300,
        deploy_image: ImageSpec | None = None,
        poll_s: float = 2.0,
    ) -> None:
        self.provide = provide
        self.wait_timeout_s = wait_timeout_s
        self.deploy_image = deploy_image
        self.poll_s = poll_s
        if conn is None:
            import openstack

            url = endpoint or os.environ.get("APEIRO_IRONIC_URL")
            if url:
                conn = openstack.connection.Connection(
                    auth_type="none", baremetal_endpoint_override=url, baremetal_api_version="1.81"
                )
            else:
                conn = openstack.connect()  # clouds.yaml / OS_* environment
        self.conn = conn

    def register(self, server: ServerSummary, bmc: BmcConnection, inventory: SystemInventory | None) -> Registration:
        from openstack import exceptions as osx

        name = node_name(server.identity)
        try:
            node = self.conn.baremetal.find_node(name, ignore_missing=True)
            created = node is None
            if node is None:
                driver_info: dict[str, Any] = {
                    "redfish_address": bmc.url,
                    "redfish_system_id": server.system_path,
                }
                if bmc.credentials is not None:
                    driver_info["redfish_username"] = bmc.credentials.username
                    driver_info["redfish_password"] = resolve_secret(bmc.credentials.password_ref)
                verify = bmc.tls.verify()
                driver_info["redfish_verify_ca"] = verify
                props: dict[str, Any] = {}
                if server.logical_processor_count:
                    props["cpus"] = server.logical_processor_count
                if server.memory_gib:
                    props["memory_mb"] = int(server.memory_gib * 1024)
                node = self.conn.baremetal.create_node(
                    name=name,
                    driver="redfish",
                    driver_info=driver_info,
                    properties=props,
                    boot_interface="redfish-virtual-media",
                    deploy_interface="ramdisk",
                    extra={"apeiro_identity": server.identity},
                )
                for mac in server.macs:
                    self.conn.baremetal.create_port(node_id=node.id, address=mac)
            state = node.provision_state
            if state == "enroll":
                node = self._move(node, "manage", "manageable")
                state = node.provision_state
            if (self.provide or self.deploy_image) and state == "manageable":
                node = self._move(node, "provide", "available")
                state = node.provision_state
            if self.deploy_image is not None and state == "available":
                # Ironic's own virtual-media deploy (ramdisk deploy interface boots the ISO).
                self.conn.baremetal.update_node(
                    node, instance_info={"boot_iso": self.deploy_image.url, "image_checksum": self.deploy_image.sha256}
                )
                node = self._move(node, "active", "active")
                state = node.provision_state
        except osx.ResourceFailure as exc:
            raise ApplicationError(f"Ironic node {name}: {exc}", type="IronicStateError", non_retryable=True) from None
        except osx.SDKException as exc:
            raise ApplicationError(f"Ironic node {name}: {exc}", type="IronicApiError") from None
        return Registration(
            identity=server.identity,
            target=self.target,
            object_id=str(node.id),
            state=str(state),
            created=created,
        )

    def _move(self, node: Any, verb: str, target: str) -> Any:
        """Request a provision state change and poll until it lands, heartbeating (Ironic's own
        `wait=True` would block past the activity's heartbeat timeout on a slow BMC)."""
        self.conn.baremetal.set_node_provision_state(node, verb)
        deadline = time.monotonic() + self.wait_timeout_s
        while True:
            node = self.conn.baremetal.get_node(node.id)
            if activity.in_activity():
                activity.heartbeat({"node": node.name, "state": node.provision_state})
            if node.provision_state == target and not node.target_provision_state:
                return node
            if node.provision_state in FAILED_STATES:
                raise ApplicationError(
                    f"Ironic node {node.name}: {verb} ended in {node.provision_state!r}: {node.last_error}",
                    type="IronicStateError",
                    non_retryable=True,
                )
            if time.monotonic() > deadline:
                raise ApplicationError(
                    f"Ironic node {node.name}: still {node.provision_state!r} {self.wait_timeout_s}s after {verb}",
                    type="IronicStateError",
                )
            time.sleep(self.poll_s)
