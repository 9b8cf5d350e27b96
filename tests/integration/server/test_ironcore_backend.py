"""Backend ``ironcore``: a site whose servers metal-operator owns is provisioned by claim, never by
driving its BMC. The real activities and workflows against the simulated metal-operator (on the
upstream CRDs from ../shared when present) and the Redfish emulator, every write through the strict
recorder, so each test also shows what it wrote validates strictly against the schema."""

from __future__ import annotations

import asyncio
import base64
import uuid
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.client import WorkflowFailureError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.redfish.store import FileInventoryStore
from activities.registration.activity import RegistrationActivities
from activities.registration.claims import ClaimActivities
from definitions.server import (
    ProvisionInput,
    ProvisionResult,
    RegisterInput,
    ServerSummary,
    SiteDefinition,
    claim_workflow_id,
)
from definitions.server_claims import ClaimRequest, ReleaseRequest
from landscape.kubeapi.part import KubeApiServer
from landscape.landscape import Landscape
from landscape.process import free_port
from landscape.redfish import RedfishEmulator
from tests.integration.strict_recorder import StrictRecorder
from tests.server_fixtures import PASSWORD_ENV, metal_api
from workers.worker import workflow_runner
from workflows.server import ServerProvisionWorkflow
from workflows.server_claim import ServerClaimWorkflow

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("metal-operator")]

M = "/apis/metal.ironcore.dev/v1alpha1"
IMAGE = "ghcr.io/gardenlinux/gardenlinux:1592.9"


#: Servers behind the emulated BMC (the conftest's ``land``; the other modules here use 2).
SYSTEMS = 3


@pytest.fixture(scope="module")
def kube(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeApiServer]:
    with metal_api(tmp_path_factory.mktemp("metal-api"), poll_seconds="0.3") as part:
        yield part


@pytest.fixture(scope="module")
def recorder(kube: KubeApiServer) -> Iterator[StrictRecorder]:
    rec = StrictRecorder(kube.url).start()
    try:
        yield rec
    finally:
        rec.stop()


@pytest.fixture
def strict(recorder: StrictRecorder, monkeypatch: pytest.MonkeyPatch) -> Iterator[StrictRecorder]:
    """The activities talk to the API through the recorder; afterwards nothing they wrote may have
    been refused by strict decoding or the schema, and no write may touch a Server."""
    monkeypatch.setenv("APEIRO_KUBE_API", recorder.url)
    before = len(recorder.writes)
    yield recorder
    mine = recorder.writes[before:]
    assert mine, "the test wrote nothing through the recorder"
    assert [str(w) for w in mine if w.violation] == []
    assert [str(w) for w in mine if "/servers/" in w.path or w.path.endswith("/servers")] == []


@pytest.fixture
async def worker(ts_env: WorkflowEnvironment, tmp_path: Path) -> AsyncIterator[str]:
    queue = f"ironcore-{uuid.uuid4().hex[:6]}"
    reg = RegistrationActivities(store=FileInventoryStore(tmp_path))
    with ThreadPoolExecutor(8) as pool:
        async with Worker(
            ts_env.client,
            task_queue=queue,
            workflows=[ServerProvisionWorkflow, ServerClaimWorkflow],
            activities=[*reg.all(), *ClaimActivities(poll_interval=0.1).all()],
            activity_executor=pool,
            workflow_runner=workflow_runner(),
        ):
            yield queue


def emulator(land: Landscape) -> RedfishEmulator:
    return next(p for p in land.parts if isinstance(p, RedfishEmulator))


def ironcore_site(url: str, name: str = "edge-ic", **ironcore: Any) -> SiteDefinition:
    return SiteDefinition.model_validate(
        {
            "name": name,
            "backend": "ironcore",
            "ironcore": {"image": IMAGE, "discovery_timeout_s": 20, "bind_timeout_s": 10, **ironcore},
            "credentials": {"lab": {"username": "admin", "password_ref": f"env:{PASSWORD_ENV}"}},
            "default_credentials": "lab",
            "bmcs": [{"url": url, "name": "ic-bmc"}],
        }
    )


def summary(land: Landscape, index: int, url: str | None = None) -> ServerSummary:
    emu = emulator(land)
    system = emu.systems[index]
    return ServerSummary(
        identity=str(system["uuid"]),
        uuid=str(system["uuid"]),
        bmc_url=url or emu.url,
        system_path=f"/redfish/v1/Systems/{system['uuid']}",
    )


async def provision(env: WorkflowEnvironment, queue: str, inp: ProvisionInput) -> ProvisionResult:
    return await env.client.execute_workflow(
        ServerProvisionWorkflow.run, inp, id=f"server-provision-{inp.server.identity}", task_queue=queue
    )


def get(kube: KubeApiServer, path: str) -> httpx.Response:
    return httpx.get(f"{kube.url}{path}", timeout=5)


def metal_fault(kube: KubeApiServer, server: str | None) -> None:
    """metal-operator reports ``server`` in Error (None: clear the faults)."""
    url = f"{kube.url}/admin/metal/faults"
    if server is None:
        httpx.delete(url, timeout=5).raise_for_status()
    else:
        httpx.post(url, json={"fault": "server-error", "server": server}, timeout=5).raise_for_status()


async def test_provision_one_on_an_ironcore_site_claims_the_server(
    ts_env: WorkflowEnvironment, worker: str, land: Landscape, kube: KubeApiServer, strict: StrictRecorder
) -> None:
    site = ironcore_site(emulator(land).url)
    got = await provision(ts_env, worker, ProvisionInput(server=summary(land, 0), site=site))
    assert got.backend == "ironcore" and got.power_state == "On"
    assert got.steps_done == ["register-bmc", "claim", "power-on"]
    server = get(kube, f"{M}/servers/{got.server_name}").json()
    assert server["spec"]["systemUUID"] == emulator(land).systems[0]["uuid"]
    assert server["status"]["state"] == "Reserved" and server["status"]["powerState"] == "On"
    assert {m["manager"] for m in server["metadata"]["managedFields"]} == {"metal-operator"}
    claim = get(kube, f"{M}/namespaces/default/serverclaims/{got.claim}").json()
    assert claim["spec"]["image"] == IMAGE and claim["spec"]["serverRef"] == {"name": got.server_name}
    assert claim["status"]["phase"] == "Bound"
    secret = get(kube, f"/api/v1/namespaces/default/secrets/{claim['spec']['ignitionSecretRef']['name']}").json()
    assert '"ignition": {"version": "3.4.0"}' in base64.b64decode(secret["data"]["ignition"]).decode()
    # The claim ran as its own workflow type; the provision workflow only handed over.
    desc = await ts_env.client.get_workflow_handle(claim_workflow_id(got.identity)).describe()
    assert desc.workflow_type == "ServerClaimWorkflow"

    # Release: the claim and its ignition Secret go, metal-operator makes the server Available again.
    assert ClaimActivities(poll_interval=0.1).release_server(ReleaseRequest(name=str(got.claim))) is True
    assert get(kube, f"{M}/namespaces/default/serverclaims/{got.claim}").status_code == 404
    assert get(kube, f"/api/v1/namespaces/default/secrets/{got.claim}-ignition").status_code == 404


async def test_a_bmc_whose_server_never_appears_times_out_naming_the_bmc(
    ts_env: WorkflowEnvironment, worker: str, land: Landscape, strict: StrictRecorder
) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"  # nothing answers: metal-operator never finds a system
    site = ironcore_site(nowhere, name="edge-gone", discovery_timeout_s=2)
    with pytest.raises(WorkflowFailureError) as err:
        await provision(ts_env, worker, ProvisionInput(server=summary(land, 1, nowhere), site=site))
    cause: Any = err.value.cause
    assert cause.type == "ServerNotDiscovered"
    assert "step registering" in cause.message and nowhere.rsplit(":", 1)[1] in cause.message
    assert "bmc-" in cause.message and "within 2s" in cause.message


async def test_a_claim_that_stays_unbound_is_deleted_with_a_clear_error(
    ts_env: WorkflowEnvironment, worker: str, land: Landscape, kube: KubeApiServer, strict: StrictRecorder
) -> None:
    site = ironcore_site(emulator(land).url, name="edge-busy", bind_timeout_s=1)
    first = await provision(ts_env, worker, ProvisionInput(server=summary(land, 2), site=site))
    # Someone else holds that server: a second claim for it (another site's name) cannot bind.
    other = ironcore_site(emulator(land).url, name="edge-late", bind_timeout_s=1)
    with pytest.raises(WorkflowFailureError) as err:
        await ts_env.client.execute_workflow(
            ServerClaimWorkflow.run,
            ProvisionInput(server=summary(land, 2), site=other),
            id=f"claim-late-{uuid.uuid4().hex[:6]}",
            task_queue=worker,
        )
    cause: Any = err.value.cause
    assert cause.type == "ClaimUnbound" and "the claim was deleted" in cause.message
    assert f"server {first.server_name}" in cause.message
    late = [w.path for w in strict.writes if w.path.endswith("/serverclaims") and w.status == 201]
    assert late, "the claim was created before it was deleted"
    assert get(kube, f"{M}/namespaces/default/serverclaims/edge-late-{summary(land, 2).identity}").status_code == 404
    ClaimActivities(poll_interval=0.1).release_server(ReleaseRequest(name=str(first.claim)))


async def test_a_server_metal_operator_reports_in_error_fails_the_provisioning(
    ts_env: WorkflowEnvironment,
    worker: str,
    land: Landscape,
    kube: KubeApiServer,
    strict: StrictRecorder,
    tmp_path: Path,
) -> None:
    site = ironcore_site(emulator(land).url, name="edge-err")
    # Register the BMC here (idempotent if an earlier test did): this test must not depend on the order
    # tests run in or on which xdist worker ran the others. The registration waits for the Server.
    registered = await asyncio.to_thread(
        RegistrationActivities(store=FileInventoryStore(tmp_path)).register,
        RegisterInput(target="ironcore", servers=[summary(land, 1)], site=site, discovery_timeout_s=30),
    )
    assert registered.failed == [] and len(registered.registered) == 1, registered
    name = registered.registered[0].object_id.removeprefix("servers/")
    assert get(kube, f"{M}/servers/{name}").json()["spec"]["systemUUID"] == emulator(land).systems[1]["uuid"]
    metal_fault(kube, name)
    try:
        for _ in range(50):
            if get(kube, f"{M}/servers/{name}").json()["status"].get("state") == "Error":
                break
            await asyncio.sleep(0.1)
        with pytest.raises(WorkflowFailureError) as err:
            await provision(ts_env, worker, ProvisionInput(server=summary(land, 1), site=site))
        cause: Any = err.value.cause
        assert cause.type == "ServerError" and name in cause.message and "Error" in cause.message
    finally:
        metal_fault(kube, None)


def test_a_claim_request_for_a_server_metal_operator_does_not_know(strict: StrictRecorder) -> None:
    """Written strictly even when it fails: the claim for a missing server is created, then deleted."""
    from temporalio.exceptions import ApplicationError

    req = ClaimRequest(name="ghost", image=IMAGE, server="no-such-server", ignition="{}", bind_timeout_seconds=0.5)
    with pytest.raises(ApplicationError) as err:
        ClaimActivities(poll_interval=0.1).claim_server(req)
    assert err.value.type == "ClaimUnbound" and "no-such-server" in str(err.value)
