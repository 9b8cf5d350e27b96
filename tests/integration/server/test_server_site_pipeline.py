"""The shipped `server-site` pipeline, started the way `apeiro run` / `make demo` start it, against the
landscape's server parts on the dev server: discover -> provision+image every server (the simulated OS
reports in through the relay) -> register in a real standalone Ironic (or skip registration when
Ironic is not installed)."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client

from definitions import queues
from definitions.library import EXAMPLES
from definitions.validate import load_yaml
from landscape.ironic import IronicService, ironic_available
from landscape.landscape import Landscape
from landscape.part import Part
from landscape.redfish import RedfishEmulator, fake_systems, server_parts
from workers.cli.pipeline import start_pipeline
from workers.worker import build_workers

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("dev-server")]


@pytest.fixture(scope="module")
def site_parts(dev_landscape: Landscape, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Landscape]:
    parts: list[Part] = server_parts(dev_landscape.part("temporal"), systems=2)
    emu = parts[1]
    assert isinstance(emu, RedfishEmulator)
    emu.seed, emu.boot_seconds = f"site-{uuid.uuid4().hex[:6]}", 0.5
    emu.systems = fake_systems(2, emu.seed)
    if ironic_available():
        parts.append(IronicService())
    land = Landscape(parts, state_dir=tmp_path_factory.mktemp("server-site"))
    with land.running():
        yield land


async def test_server_site_pipeline(
    dev_client: Client, site_parts: Landscape, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("APEIRO_INVENTORY_DIR", str(tmp_path / "inventory"))
    for key, value in site_parts.env().items():
        monkeypatch.setenv(key, value)
    inputs: dict[str, Any] = {}
    for part in site_parts.parts:
        inputs.update(part.pipeline_inputs())
    inputs["registerTarget"] = "ironic" if ironic_available() else "none"
    data = load_yaml((EXAMPLES / "server-site.yaml").read_text(), "server-site.yaml")
    async with contextlib.AsyncExitStack() as stack:
        for w in build_workers(dev_client, [queues.PIPELINE, queues.REDFISH]):
            await stack.enter_async_context(w)
        handle = await start_pipeline(dev_client, data, inputs, workflow_id=f"server-site-{uuid.uuid4().hex[:6]}")
        result = await handle.result()
    states = {s["name"]: s["state"] for s in result["steps"]}
    emu = site_parts.part("redfish")
    assert isinstance(emu, RedfishEmulator)
    assert sorted(result["outputs"]["servers"]) == sorted(str(s["uuid"]) for s in emu.systems)
    assert result["outputs"]["problems"] == []
    assert states["discover"] == "succeeded" and states["provision"] == "succeeded"
    assert {b["identity"] for b in emu.boots()} == set(result["outputs"]["servers"])
    assert (tmp_path / "inventory").is_dir()
    if ironic_available():
        assert states["register"] == "succeeded"
        from activities.registration.ironic import IronicRegistrar, node_name

        conn = IronicRegistrar(endpoint=site_parts.part("ironic").endpoints["url"]).conn
        nodes = {n.name: n.provision_state for n in conn.baremetal.nodes(details=True)}
        assert nodes == {node_name(i): "available" for i in result["outputs"]["servers"]}
    else:
        assert states["register"] == "skipped"
