"""OpenStack Ironic (CobaltCore) registration through openstacksdk: enroll a node with the redfish
driver, then manage and (optionally) provide it. Idempotent: the node is found by its name (derived
from the server identity) before anything is created, and each state move is skipped when done.
The BMC password is resolved here and goes only to Ironic's driver_info."""

from __future__ import annotations

import os
from typing import Any

from temporalio.exceptions import ApplicationError

from activities.secrets import resolve_secret
from definitions.server import BmcConnection, Registration, ServerSummary, SystemInventory


def node_name(identity: str) -> str:
    return f"apeiro-{identity}"[:63]


class IronicRegistrar:
    target = "ironic"

    def __init__(
        self, endpoint: str | None = None, provide: bool = True, conn: Any = None, wait_timeout_s: int = 300
    ) -> None:
        self.provide = provide
        self.wait_timeout_s = wait_timeout_s
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

    def register(
        self, server: ServerSummary, bmc: BmcConnection, inventory: SystemInventory | None
    ) -> Registration:
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
                node = self.conn.baremetal.set_node_provision_state(
                    node, "manage", wait=True, timeout=self.wait_timeout_s
                )
                state = node.provision_state
            if self.provide and state == "manageable":
                node = self.conn.baremetal.set_node_provision_state(
                    node, "provide", wait=True, timeout=self.wait_timeout_s
                )
                state = node.provision_state
        except osx.ResourceFailure as exc:
            raise ApplicationError(
                f"Ironic node {name}: {exc}", type="IronicStateError", non_retryable=True
            ) from None
        except osx.SDKException as exc:
            raise ApplicationError(f"Ironic node {name}: {exc}", type="IronicApiError") from None
        return Registration(
            identity=server.identity,
            target=self.target,
            object_id=str(node.id),
            state=str(state),
            created=created,
        )
