"""Registration behind one interface: IronCore objects (fake CustomObjectsApi) and Ironic (fake SDK)."""

from __future__ import annotations

import base64
import os
from types import SimpleNamespace
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from activities.redfish.store import FileInventoryStore
from activities.registration.activity import RegistrationActivities
from activities.registration.ironcore import IronCoreRegistrar
from activities.registration.ironic import IronicRegistrar, node_name
from definitions.server import RegisterInput, ServerSummary, SiteDefinition, SystemInventory


class FakeCustomObjects:
    """Just enough of CustomObjectsApi: create (409 on exists), merge patch, status patch."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], dict[str, Any]] = {}

    def create_cluster_custom_object(self, group: str, version: str, plural: str, body: dict[str, Any]) -> Any:
        key = (plural, body["metadata"]["name"])
        if key in self.objects:
            raise ApiException(status=409, reason="AlreadyExists")
        self.objects[key] = body
        return body

    def patch_cluster_custom_object(self, group: str, version: str, plural: str, name: str, body: Any) -> Any:
        self.objects[(plural, name)].update({k: v for k, v in body.items() if k != "metadata"})
        return self.objects[(plural, name)]

    def patch_cluster_custom_object_status(self, group: str, version: str, plural: str, name: str, body: Any) -> Any:
        self.objects[(plural, name)]["status"] = body["status"]
        return self.objects[(plural, name)]


SITE = SiteDefinition.model_validate(
    {
        "name": "edge",
        "credentials": {"lab": {"username": "admin", "password_ref": "env:APEIRO_TEST_REG_PW"}},
        "default_credentials": "lab",
        "bmcs": [{"url": "https://192.0.2.5:8443", "name": "rack1"}],
    }
)
SERVER = ServerSummary(
    identity="3a1f0000-0000-4000-8000-000000000001",
    uuid="3a1f0000-0000-4000-8000-000000000001",
    bmc_url="https://192.0.2.5:8443",
    system_path="/redfish/v1/Systems/1",
    manufacturer="Contoso",
    macs=["52:54:00:00:00:01"],
    memory_gib=96,
    logical_processor_count=16,
)


@pytest.fixture(autouse=True)
def password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APEIRO_TEST_REG_PW", "reg-secret-1")


def test_ironcore_objects_are_created_once_and_carry_the_inventory(tmp_path: Any) -> None:
    api = FakeCustomObjects()
    store = FileInventoryStore(tmp_path)
    store.put_inventory(
        "edge",
        SystemInventory(
            bmc_url=SERVER.bmc_url,
            system_path=SERVER.system_path,
            id="1",
            uuid=SERVER.uuid,
            memory_gib=96,
            sku="8675309",
        ),
    )
    acts = RegistrationActivities(store=store, registrar_factory=lambda inp: IronCoreRegistrar(api=api))
    inp = RegisterInput(target="ironcore", servers=[SERVER], site=SITE)
    first = acts.register(inp)
    second = acts.register(inp)
    assert [r.created for r in first.registered] == [True]
    assert [r.created for r in second.registered] == [False]
    kinds = sorted(k for k, _ in api.objects)
    assert kinds == ["bmcs", "bmcsecrets", "servers"]
    secret = next(v for (k, _), v in api.objects.items() if k == "bmcsecrets")
    assert base64.b64decode(secret["data"]["password"]).decode() == "reg-secret-1"
    bmc = next(v for (k, _), v in api.objects.items() if k == "bmcs")
    assert bmc["spec"]["protocol"] == {"name": "Redfish", "port": 8443, "scheme": "https"}
    assert bmc["spec"]["access"] == {"address": "192.0.2.5"}
    assert bmc["spec"]["bmcSecretRef"]["name"] == secret["metadata"]["name"]
    server = next(v for (k, _), v in api.objects.items() if k == "servers")
    assert server["spec"]["uuid"] == SERVER.uuid and server["spec"]["bmcRef"]["name"] == bmc["metadata"]["name"]
    assert server["status"]["totalSystemMemory"] == "96.0Gi" and server["status"]["sku"] == "8675309"
    # The result (what goes into workflow history) never carries the password.
    assert "reg-secret-1" not in first.model_dump_json()


class FakeBaremetal:
    def __init__(self) -> None:
        self.nodes: dict[str, SimpleNamespace] = {}
        self.ports: list[tuple[str, str]] = []
        self.moves: list[str] = []

    def find_node(self, name: str, ignore_missing: bool = True) -> Any:
        return self.nodes.get(name)

    def create_node(self, **kw: Any) -> Any:
        node = SimpleNamespace(
            id=f"uuid-{len(self.nodes)}", provision_state="enroll", target_provision_state=None, last_error=None, **kw
        )
        self.nodes[kw["name"]] = node
        return node

    def create_port(self, node_id: str, address: str) -> None:
        self.ports.append((node_id, address))

    def get_node(self, node_id: str) -> Any:
        return next(n for n in self.nodes.values() if n.id == node_id)

    def set_node_provision_state(self, node: Any, target: str) -> Any:
        self.moves.append(target)
        node.provision_state = {"manage": "manageable", "provide": "available"}[target]
        return node


def test_ironic_enroll_manage_provide_idempotent() -> None:
    bm = FakeBaremetal()
    reg = IronicRegistrar(conn=SimpleNamespace(baremetal=bm))
    conn = SITE.connections()[0]
    r1 = reg.register(SERVER, conn, None)
    r2 = reg.register(SERVER, conn, None)
    assert (r1.created, r1.state, r2.created, r2.state) == (True, "available", False, "available")
    assert bm.moves == ["manage", "provide"]
    node = bm.nodes[node_name(SERVER.identity)]
    assert node.driver == "redfish" and node.driver_info["redfish_address"] == "https://192.0.2.5:8443"
    assert node.driver_info["redfish_system_id"] == "/redfish/v1/Systems/1"
    assert node.properties == {"cpus": 16, "memory_mb": 96 * 1024}
    assert bm.ports == [("uuid-0", "52:54:00:00:00:01")]
    assert os.environ["APEIRO_TEST_REG_PW"] == node.driver_info["redfish_password"]
