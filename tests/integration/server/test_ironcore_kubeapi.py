"""IronCore registration through the landscape's Kubernetes-style API server with the real
`kubernetes` client (runs once the API server from the cluster lifecycle is on the branch)."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import pytest

from activities.registration.ironcore import GROUP, VERSION, IronCoreRegistrar, api_client_from_env
from definitions.server import ServerSummary, SiteDefinition, SystemInventory

kubeapi_part = pytest.importorskip("landscape.kubeapi.part", reason="landscape.kubeapi not merged yet")

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("kubeapi-ironcore")]


@pytest.fixture(scope="module")
def kube_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    part = kubeapi_part.KubeApiServer(plugins=("landscape.kubeapi.extra_kinds",))
    part.start(tmp_path_factory.mktemp("kubeapi"))
    try:
        yield part.endpoints["url"]
    finally:
        part.stop()


def test_register_servers_as_metal_objects(
    kube_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from kubernetes import client

    monkeypatch.setenv("APEIRO_KUBE_API", kube_url)
    monkeypatch.setenv("APEIRO_TEST_KUBE_PW", "kube-secret-7")
    site = SiteDefinition.model_validate(
        {
            "name": "edge",
            "credentials": {"c": {"username": "admin", "password_ref": "env:APEIRO_TEST_KUBE_PW"}},
            "default_credentials": "c",
            "bmcs": [{"url": "http://127.0.0.1:8000"}],
        }
    )
    conn = site.connections()[0]
    server = ServerSummary(
        identity="5c2b0000-0000-4000-8000-00000000000a",
        uuid="5c2b0000-0000-4000-8000-00000000000a",
        bmc_url=conn.url,
        system_path="/redfish/v1/Systems/a",
        manufacturer="Sushy Emulator",
        macs=["52:54:00:00:00:0a"],
    )
    inv = SystemInventory(
        bmc_url=conn.url, system_path=server.system_path, id="a", uuid=server.uuid, memory_gib=64
    )
    reg = IronCoreRegistrar()
    first = reg.register(server, conn, inv)
    second = reg.register(server, conn, inv)
    assert (first.created, second.created) == (True, False)
    api = client.CustomObjectsApi(api_client_from_env())
    name = first.object_id.split("/", 1)[1]
    obj = api.get_cluster_custom_object(GROUP, VERSION, "servers", name)
    assert obj["spec"]["uuid"] == server.uuid
    assert obj["status"]["totalSystemMemory"] == "64.0Gi"
    assert obj["status"]["networkInterfaces"][0]["macAddress"] == "52:54:00:00:00:0a"
    bmc = api.get_cluster_custom_object(GROUP, VERSION, "bmcs", obj["spec"]["bmcRef"]["name"])
    secret = api.get_cluster_custom_object(GROUP, VERSION, "bmcsecrets", bmc["spec"]["bmcSecretRef"]["name"])
    assert base64.b64decode(secret["data"]["password"]).decode() == "kube-secret-7"
