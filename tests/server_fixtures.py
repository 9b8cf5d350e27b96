"""Shared helpers for the server lifecycle tests: emulator landscapes and a worker on a test queue."""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from temporalio.client import Client
from temporalio.worker import Worker

from activities.redfish.activities import RedfishActivities
from activities.redfish.store import FileInventoryStore
from activities.registration.activity import RegistrationActivities
from definitions.server import (
    BmcConnection,
    BmcCredentials,
    DiscoverInput,
    DiscoverResult,
    ImageSpec,
    ProvisionFleetInput,
    ProvisionFleetResult,
    ProvisionSpec,
    SiteDefinition,
    TlsOptions,
)
from landscape.kubeapi.part import KubeApiServer
from landscape.landscape import Landscape
from landscape.redfish import ImageServer, RedfishEmulator
from workers.redfish import workflows as redfish_workflows
from workers.worker import workflow_runner


def shared_testdata() -> Path:
    """../shared/testdata seen from the main checkout or from a worktree (APEIRO_TESTDATA overrides)."""
    if os.environ.get("APEIRO_TESTDATA"):
        return Path(os.environ["APEIRO_TESTDATA"])
    for parent in Path(__file__).resolve().parents:
        candidate = parent / "shared" / "testdata"
        if candidate.is_dir():
            return candidate
    return Path(__file__).resolve().parents[2] / "shared" / "testdata"


def upstream_metal_crds() -> dict[str, str]:
    """Run on metal-operator's own CRDs when ../shared has them (the landscape's own otherwise)."""
    path = shared_testdata() / "crds" / "metal-operator"
    return {"metal.crds": str(path)} if path.is_dir() else {}


@contextlib.contextmanager
def metal_api(state: Path, *plugins: str, poll_seconds: str | None = None) -> Iterator[KubeApiServer]:
    """The landscape's API server with the simulated metal-operator (``plugins`` before it), on the
    upstream CRDs when present; fast discovery, and ``poll_seconds`` for its BMC polling."""
    poll = {"metal.pollSeconds": poll_seconds} if poll_seconds else {}
    part = KubeApiServer(
        plugins=(*plugins, "landscape.metal_operator"),
        seed_garden=False,
        settings={**poll, "metal.discoverySeconds": "0.05", **upstream_metal_crds()},
    )
    part.start(state)
    try:
        yield part
    finally:
        part.stop()


#: The password the emulator accepts; tests pass it only as the reference env:APEIRO_TEST_BMC_PASSWORD.
BMC_PASSWORD = "bmc-Pa55-7f3c9e1d"
PASSWORD_ENV = "APEIRO_TEST_BMC_PASSWORD"
WRONG_ENV = "APEIRO_TEST_BMC_WRONG"


@contextlib.contextmanager
def emulator_landscape(state: Path, systems: int = 2, tls: bool = False) -> Iterator[Landscape]:
    os.environ[PASSWORD_ENV] = BMC_PASSWORD
    os.environ[WRONG_ENV] = "not-the-password"
    emu = RedfishEmulator(
        systems,
        username="admin",
        password=BMC_PASSWORD,
        tls=tls,
        seed=state.name,
        firmware_seconds=1.0,
        boot_seconds=0.5,
    )
    land = Landscape([emu, ImageServer(size_mib=1)], state_dir=state)
    with land.running():
        yield land


def connection(emu: RedfishEmulator, password_env: str = PASSWORD_ENV, **tls: object) -> BmcConnection:
    return BmcConnection(
        url=emu.url,
        name="bmc-a",
        credentials=BmcCredentials(username="admin", password_ref=f"env:{password_env}"),
        tls=TlsOptions(**tls),
        timeout_s=10,
    )  # type: ignore[arg-type]


def site(name: str, *urls: str, password_env: str = PASSWORD_ENV) -> SiteDefinition:
    return SiteDefinition.model_validate(
        {
            "name": name,
            "credentials": {"lab": {"username": "admin", "password_ref": f"env:{password_env}"}},
            "default_credentials": "lab",
            "bmcs": [{"url": u, "name": f"bmc-{i}"} for i, u in enumerate(urls)],
            "timeout_s": 10,
        }
    )


@contextlib.asynccontextmanager
async def redfish_worker(client: Client, task_queue: str, store_dir: Path) -> AsyncIterator[RedfishActivities]:
    acts = RedfishActivities(store=FileInventoryStore(store_dir), poll_initial_s=0.5, poll_max_s=2.0)
    reg = RegistrationActivities(store=acts.store)
    with ThreadPoolExecutor(32) as pool:
        worker = Worker(
            client,
            task_queue=task_queue,
            workflows=redfish_workflows(),
            activities=[*acts.all(), *reg.all()],
            activity_executor=pool,
            max_concurrent_activities=32,
            workflow_runner=workflow_runner(),
        )
        async with worker:
            yield acts


async def discover_and_provision(
    client: Client, queue: str, site: SiteDefinition, images: dict[str, str], ids: tuple[str, str]
) -> tuple[DiscoverResult, ProvisionFleetResult]:
    """Discover the site, then provision every server found with the image server's image (two at a
    time); run inside ``redfish_worker``. ``ids`` are the discovery and fleet workflow ids."""
    from workflows.server import ServerDiscoveryWorkflow, ServerProvisionFleetWorkflow

    found = await client.execute_workflow(
        ServerDiscoveryWorkflow.run, DiscoverInput(site=site), id=ids[0], task_queue=queue
    )
    fleet = await client.execute_workflow(
        ServerProvisionFleetWorkflow.run,
        ProvisionFleetInput(
            servers=found.servers,
            site=site,
            concurrency=2,
            spec=ProvisionSpec(image=ImageSpec(url=images["url"], sha256=images["sha256"]), report_in_timeout_s=120),
        ),
        id=ids[1],
        task_queue=queue,
    )
    return found, fleet
