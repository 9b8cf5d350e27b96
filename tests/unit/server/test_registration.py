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
from definitions.server import RegisterInput, ServerSummary, SiteDefinition


class FakeCustomObjects:
    """Just enough of CustomObjectsApi (create with 409, merge patch, status patch, list), plus what
    metal-operator does: a created BMC makes a Server, Available, for each of ``discoverable``
    (system UUIDs), written by "metal-operator" (``written_by`` records who wrote each object)."""

    def __init__(self, discoverable: list[str] | None = None, state: str = "Available") -> None:
        self.objects: dict[tuple[str, str], dict[str, Any]] = {}
        self.written_by: dict[tuple[str, str], str] = {}
        self.discoverable = list(discoverable or [])
        self.state = state

    def create_cluster_custom_object(
        self, group: str, version: str, plural: str, body: dict[str, Any], **kw: Any
    ) -> Any:
        assert kw.get("field_validation") == "Strict"
        key = (plural, body["metadata"]["name"])
        if key in self.objects:
            raise ApiException(status=409, reason="AlreadyExists")
        self.objects[key] = body
        self.written_by[key] = "client"
        if plural == "bmcs":
            for i, system_uuid in enumerate(self.discoverable):
                name = f"{body['metadata']['name']}-system-{i}"
                self.objects[("servers", name)] = {
                    "metadata": {"name": name},
                    "spec": {"systemUUID": system_uuid, "bmcRef": {"name": body["metadata"]["name"]}},
                    "status": {"state": self.state},
                }
                self.written_by[("servers", name)] = "metal-operator"
        return body

    def list_cluster_custom_object(self, group: str, version: str, plural: str) -> Any:
        return {"items": [v for (k, _), v in self.objects.items() if k == plural]}

    def patch_cluster_custom_object(self, group: str, version: str, plural: str, name: str, body: Any, **kw: Any) -> Any:
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


def test_ironcore_registers_the_bmc_and_waits_for_metal_operators_server(tmp_path: Any) -> None:
    api = FakeCustomObjects(discoverable=[SERVER.uuid or ""])
    store = FileInventoryStore(tmp_path)
    acts = RegistrationActivities(store=store, registrar_factory=lambda inp: IronCoreRegistrar(api=api))
    inp = RegisterInput(target="ironcore", servers=[SERVER], site=SITE)
    first = acts.register(inp)
    second = acts.register(inp)
    assert [r.created for r in first.registered] == [True]
    assert [r.created for r in second.registered] == [False]
    assert [(r.state, r.object_id.split("-")[-2:]) for r in first.registered] == [("Available", ["system", "0"])]
    # the client writes BMCSecret and BMC only; Servers and their status are metal-operator's
    assert {k: w for k, w in api.written_by.items() if w == "client"}.keys() == {
        (k, n) for (k, n) in api.objects if k in ("bmcs", "bmcsecrets")}
    assert all("status" not in v for (k, _), v in api.objects.items() if k != "servers")
    secret = next(v for (k, _), v in api.objects.items() if k == "bmcsecrets")
    assert base64.b64decode(secret["data"]["password"]).decode() == "reg-secret-1"
    bmc = next(v for (k, _), v in api.objects.items() if k == "bmcs")
    assert bmc["spec"]["protocol"] == {"name": "Redfish", "port": 8443, "scheme": "https"}
    assert bmc["spec"]["access"] == {"ip": "192.0.2.5"}
    assert bmc["spec"]["bmcSecretRef"]["name"] == secret["metadata"]["name"]
    # The result (what goes into workflow history) never carries the password.
    assert "reg-secret-1" not in first.model_dump_json()


def test_ironcore_server_that_never_appears_or_errors(tmp_path: Any) -> None:
    store = FileInventoryStore(tmp_path)
    inp = RegisterInput(target="ironcore", servers=[SERVER], site=SITE)
    never = RegistrationActivities(
        store=store, registrar_factory=lambda i: IronCoreRegistrar(api=FakeCustomObjects(), discovery_timeout=0.2,
                                                                   poll_interval=0.05))
    out = never.register(inp)
    assert [f.error_type for f in out.failed] == ["ServerNotDiscovered"]
    assert "rack1" not in out.failed[0].message and "192.0.2.5" in out.failed[0].message
    broken = RegistrationActivities(
        store=store, registrar_factory=lambda i: IronCoreRegistrar(
            api=FakeCustomObjects(discoverable=[SERVER.uuid or ""], state="Error")))
    out = broken.register(inp)
    assert [f.error_type for f in out.failed] == ["ServerError"] and "in Error" in out.failed[0].message


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
