"""Backend ``ironcore`` in the workflows (time-skipping server, activities stubbed): a site chooses who
drives its servers. An ironcore site's servers are claimed by ServerClaimWorkflow; no Redfish activity
runs for them. Redfish sites keep their workflow and command sequence."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from temporalio import activity
from temporalio.client import WorkflowFailureError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from definitions.server import (
    ProvisionFailure,
    ProvisionFleetInput,
    ProvisionFleetResult,
    ProvisionInput,
    ProvisionResult,
    RegisterInput,
    RegisterResult,
    Registration,
    ServerSummary,
    SiteDefinition,
)
from definitions.server_claims import ClaimRequest, ClaimResult
from workers.worker import workflow_runner
from workflows.server import ServerProvisionFleetWorkflow, ServerProvisionWorkflow
from workflows.server_claim import ServerClaimWorkflow, claim_name

pytestmark = pytest.mark.workflow

URL = "http://10.0.0.5:8000"


def site(backend: str = "ironcore") -> SiteDefinition:
    return SiteDefinition.model_validate(
        {
            "name": "edge-ic",
            "backend": backend,
            "ironcore": {"image": "ghcr.io/gardenlinux/gardenlinux:1592.9"},
            "bmcs": [{"url": URL}],
        }
    )


def server(n: int) -> ServerSummary:
    return ServerSummary(identity=f"uuid-{n}", uuid=f"uuid-{n}", bmc_url=URL, system_path=f"/redfish/v1/Systems/{n}")


class Stubs:
    def __init__(self, missing: set[str] | None = None) -> None:
        self.missing = missing or set()
        self.claims: list[ClaimRequest] = []
        self.redfish_calls = 0

    @activity.defn(name="server.register")
    async def register(self, inp: RegisterInput) -> RegisterResult:
        assert inp.target == "ironcore" and inp.discovery_timeout_s == 300
        s = inp.servers[0]
        if s.identity in self.missing:
            return RegisterResult(
                failed=[
                    ProvisionFailure(
                        identity=s.identity,
                        error_type="ServerNotDiscovered",
                        message=f"no Server for {s.uuid} of BMC bmc-x ({URL})",
                    )
                ]
            )
        return RegisterResult(
            registered=[
                Registration(
                    identity=s.identity,
                    target="ironcore",
                    object_id=f"servers/bmc-x-{s.identity}",
                    state="Available",
                    created=True,
                )
            ]
        )

    @activity.defn(name="ironcore.claim_server")
    async def claim(self, req: ClaimRequest) -> ClaimResult:
        self.claims.append(req)
        return ClaimResult(claim=req.name, server=str(req.server), power_state="On", created=True)

    @activity.defn(name="redfish.power")
    async def power(self, _: Any) -> Any:
        self.redfish_calls += 1
        raise AssertionError("an ironcore site's server must never be powered through its BMC")


async def run_worker(env: WorkflowEnvironment, stubs: Stubs, body: Any) -> Any:
    queue = f"claims-{uuid.uuid4().hex[:6]}"
    async with Worker(
        env.client,
        task_queue=queue,
        workflows=[ServerProvisionWorkflow, ServerProvisionFleetWorkflow, ServerClaimWorkflow],
        activities=[stubs.register, stubs.claim, stubs.power],
        workflow_runner=workflow_runner(),
    ):
        return await body(queue)


async def test_fleet_on_an_ironcore_site_claims_every_server(ts_env: WorkflowEnvironment) -> None:
    stubs = Stubs(missing={"uuid-2"})

    async def body(queue: str) -> ProvisionFleetResult:
        return await ts_env.client.execute_workflow(
            ServerProvisionFleetWorkflow.run,
            ProvisionFleetInput(servers=[server(1), server(2)], site=site()),
            id=f"fleet-{uuid.uuid4().hex[:6]}",
            task_queue=queue,
        )

    got = await run_worker(ts_env, stubs, body)
    assert got.provisioned == ["uuid-1"]
    assert [(f.identity, f.error_type) for f in got.failed] == [("uuid-2", "ServerNotDiscovered")]
    assert "bmc-x" in got.failed[0].message
    (req,) = stubs.claims
    assert (req.name, req.server, req.power) == (claim_name("edge-ic", "uuid-1"), "bmc-x-uuid-1", "On")
    assert req.image == "ghcr.io/gardenlinux/gardenlinux:1592.9" and req.ignition and "edge-ic-uuid-1" in req.ignition
    assert stubs.redfish_calls == 0


async def test_provision_one_hands_an_ironcore_server_to_its_claim_workflow(ts_env: WorkflowEnvironment) -> None:
    stubs = Stubs()

    async def body(queue: str) -> ProvisionResult:
        return await ts_env.client.execute_workflow(
            ServerProvisionWorkflow.run,
            ProvisionInput(server=server(3), site=site()),
            id=f"server-provision-{uuid.uuid4().hex[:6]}",
            task_queue=queue,
        )

    got = await run_worker(ts_env, stubs, body)
    assert (got.backend, got.server_name, got.power_state) == ("ironcore", "bmc-x-uuid-3", "On")
    assert got.steps_done == ["register-bmc", "claim", "power-on"] and stubs.redfish_calls == 0


async def test_claim_workflow_needs_a_discovery_summary(ts_env: WorkflowEnvironment) -> None:
    from definitions.server import BmcConnection, ServerRef

    ref = ServerRef(identity="x", bmc=BmcConnection(url=URL), system_path="/redfish/v1/Systems/1")

    async def body(queue: str) -> None:
        await ts_env.client.execute_workflow(
            ServerClaimWorkflow.run,
            ProvisionInput(server=ref, site=site()),
            id=f"claim-{uuid.uuid4().hex[:6]}",
            task_queue=queue,
        )

    with pytest.raises(WorkflowFailureError) as err:
        await run_worker(ts_env, Stubs(), body)
    cause: Any = err.value.cause
    assert cause.type == "InvalidSiteDefinition" and "system UUID" in cause.message


def test_backend_defaults_to_redfish_and_ironcore_wants_listed_bmcs() -> None:
    assert SiteDefinition.model_validate({"name": "s", "bmcs": [{"url": URL}]}).backend == "redfish"
    ranged = SiteDefinition.model_validate(
        {"name": "s", "backend": "ironcore", "ranges": [{"start": "10.0.0.1", "end": "10.0.0.2"}]}
    )
    assert any("not ranges" in p for p in ranged.problems())
    with pytest.raises(ValueError):
        SiteDefinition.model_validate({"name": "s", "backend": "metal", "bmcs": [{"url": URL}]})
