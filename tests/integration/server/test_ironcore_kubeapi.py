"""IronCore registration through the landscape's API server with the real `kubernetes` client and the
simulated metal-operator on the Redfish emulator: the orchestrator writes BMCSecret + BMC (validated
strictly against metal-operator's CRDs), metal-operator discovers the Servers and reports them."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import pytest

from activities.registration.ironcore import GROUP, VERSION, IronCoreRegistrar, api_client_from_env
from definitions.server import ServerSummary, SiteDefinition
from landscape.landscape import Landscape
from landscape.redfish import RedfishEmulator
from tests.server_fixtures import BMC_PASSWORD, PASSWORD_ENV, metal_api

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("kubeapi-ironcore")]


@pytest.fixture(scope="module")
def kube_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with metal_api(tmp_path_factory.mktemp("kubeapi"), "landscape.kubeapi.extra_kinds") as part:
        yield part.endpoints["url"]


def test_register_bmc_and_wait_for_metal_operator(
    kube_url: str, land: Landscape, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from kubernetes import client

    monkeypatch.setenv("APEIRO_KUBE_API", kube_url)
    emu = next(p for p in land.parts if isinstance(p, RedfishEmulator))
    site = SiteDefinition.model_validate(
        {
            "name": "edge",
            "credentials": {"c": {"username": "admin", "password_ref": f"env:{PASSWORD_ENV}"}},
            "default_credentials": "c",
            "bmcs": [{"url": emu.url}],
        }
    )
    conn = site.connections()[0]
    system = emu.systems[1]
    server = ServerSummary(
        identity=str(system["uuid"]), uuid=str(system["uuid"]), bmc_url=conn.url, system_path="/redfish/v1/Systems/x"
    )
    reg = IronCoreRegistrar(discovery_timeout=30, poll_interval=0.1)
    first = reg.register(server, conn, None)
    second = reg.register(server, conn, None)
    assert (first.created, second.created) == (True, False) and first.state == "Available"
    api = client.CustomObjectsApi(api_client_from_env())
    name = first.object_id.split("/", 1)[1]
    obj = api.get_cluster_custom_object(GROUP, VERSION, "servers", name)
    assert obj["spec"]["systemUUID"] == server.uuid
    assert [m["manager"] for m in obj["metadata"]["managedFields"]] == ["metal-operator"] * len(
        obj["metadata"]["managedFields"]
    )
    bmc = api.get_cluster_custom_object(GROUP, VERSION, "bmcs", obj["spec"]["bmcRef"]["name"])
    assert bmc["spec"]["access"] == {"ip": "127.0.0.1"} and bmc["status"]["state"] == "Enabled"
    secret = api.get_cluster_custom_object(GROUP, VERSION, "bmcsecrets", bmc["spec"]["bmcSecretRef"]["name"])
    assert base64.b64decode(secret["data"]["password"]).decode() == BMC_PASSWORD
