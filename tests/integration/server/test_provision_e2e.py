"""End to end on the dev server: discover an emulated site, provision and image every server (the
simulated OS reports in through the callback relay), register them (IronCore, fake API)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from temporalio.client import Client

from activities.redfish.store import FileInventoryStore
from activities.registration.activity import RegistrationActivities
from activities.registration.ironcore import IronCoreRegistrar
from definitions.server import (
    DiscoveryProgress,
    RegisterInput,
    SiteDefinition,
)
from landscape.landscape import Landscape
from landscape.redfish import RedfishEmulator, fake_systems, server_parts
from tests.server_fixtures import BMC_PASSWORD, PASSWORD_ENV, discover_and_provision, redfish_worker
from tests.unit.server.test_registration import FakeCustomObjects

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("dev-server")]


@pytest.fixture(scope="module")
def edge_site(dev_landscape: Landscape, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Landscape]:
    """The parts `make demo` uses (relay, emulator, image server) next to the session's dev server."""
    import os

    os.environ[PASSWORD_ENV] = BMC_PASSWORD
    parts = server_parts(dev_landscape.part("temporal"), systems=2)
    emu = parts[1]
    assert isinstance(emu, RedfishEmulator)
    emu.seed, emu.boot_seconds = f"e2e-{uuid.uuid4().hex[:6]}", 0.5
    emu.systems = fake_systems(2, emu.seed)
    land = Landscape(parts, state_dir=tmp_path_factory.mktemp("edge"))
    with land.running():
        yield land


async def test_discover_provision_register(
    dev_client: Client, edge_site: Landscape, task_queue: str, tmp_path: Path
) -> None:
    emu = edge_site.part("redfish")
    images = edge_site.part("images").endpoints
    # The landscape's own site definition: credentials by file reference, no password anywhere else.
    definition = SiteDefinition.model_validate(emu.site_definition(f"edge-{uuid.uuid4().hex[:6]}"))
    assert definition.problems() == [] and str(emu.password_ref).startswith("file:")
    async with redfish_worker(dev_client, task_queue, tmp_path):
        ids = (f"e2e-discover-{uuid.uuid4().hex[:6]}", f"e2e-fleet-{uuid.uuid4().hex[:6]}")
        found, fleet = await discover_and_provision(dev_client, task_queue, definition, images, ids)
    assert fleet.failed == []
    assert sorted(fleet.provisioned) == sorted(found.identities) and len(found.identities) == 2
    booted = {b["identity"] for b in emu.boots()}
    assert booted == set(found.identities)
    api = FakeCustomObjects(discoverable=[s.uuid or s.identity for s in found.servers])
    reg = RegistrationActivities(store=FileInventoryStore(tmp_path), registrar_factory=lambda i: IronCoreRegistrar(api))
    out = reg.register(RegisterInput(target="ironcore", servers=found.servers, site=definition))
    assert len(out.registered) == 2 and out.failed == []
    assert len([k for k, _ in api.objects if k == "servers"]) == 2


async def test_discover_cli_starts_and_joins_the_site_workflow(
    dev_client: Client,
    dev_landscape: Landscape,
    edge_site: Landscape,
    task_queue: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import argparse
    import asyncio

    from workers.cli import baremetal

    emu = edge_site.part("redfish")
    name = f"cli-{uuid.uuid4().hex[:6]}"
    path = tmp_path / "site.json"
    definition = emu.site_definition(name)
    # A second BMC (the same emulator by another name) with a wrong password: one problem, fast.
    assert "127.0.0.1" in emu.url
    monkeypatch.setenv("APEIRO_TEST_CLI_WRONG", "not-the-password")
    definition["credentials"]["wrong"] = {"username": "admin", "password_ref": "env:APEIRO_TEST_CLI_WRONG"}
    definition["bmcs"].append({"url": emu.url.replace("127.0.0.1", "localhost"), "credentials": "wrong"})
    path.write_text(json.dumps(definition))
    for k, v in dev_landscape.part("temporal").env().items():
        monkeypatch.setenv(k, v)
    parser = argparse.ArgumentParser()
    baremetal.register(parser.add_subparsers())
    args = parser.parse_args(["baremetal", "discover", str(path), "--task-queue", task_queue])
    async with redfish_worker(dev_client, task_queue, tmp_path):
        code = await asyncio.to_thread(args.func, args)
        # The progress the command showed came from the workflow's status query; its final numbers:
        progress = await dev_client.get_workflow_handle(f"server-discover-{name}").query(
            "status", result_type=DiscoveryProgress
        )
    captured = capsys.readouterr()
    out, err = captured.out, captured.err
    assert code == 1, out + err  # a problem: exit 1, the result (with the problem) printed all the same
    assert f"server-discover-{name}" in out and '"bmcs_reachable": 1' in out and "BmcAuthenticationFailed" in out
    assert progress.model_dump() == {
        "state": "done", "bmcs_total": 2, "bmcs_done": 2, "systems_total": 2, "systems_done": 2,
        "problems": 1, "servers": 2,
    }
    # stderr is no terminal here: one plain line per change, then the final numbers.
    lines = err.rstrip().splitlines()
    assert lines[-1] == "discovery BMCs 2/2: done, systems 2/2, 1 problem, 2 servers", err
    assert all(line.startswith("  BMCs ") for line in lines[:-1]) and len(lines) >= 2, err
    assert any(": done" not in line for line in lines[:-1]), err  # seen while the run went on
