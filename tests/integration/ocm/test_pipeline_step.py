"""`component.transport` as a pipeline step: the exact YAML proposed for edge-site, run by the engine."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml
from temporalio.client import Client

from activities.ocm import signing as sg
from activities.ocm.layout import RepoBase, read_version
from definitions import queues
from definitions.catalog import load_catalog
from definitions.validate import validate_definition
from landscape import ocm_example as ex
from tests.integration.ocm.conftest import Registries
from workers.cli.pipeline import start_pipeline
from workers.worker import build_workers

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("ocm-registries")]

#: The inputs and the step to add to definitions/examples/edge-site.yaml (the lead wires it there).
EDGE_SITE_INPUTS = """
ocmSource: {type: string, default: "http://127.0.0.1:5000/ocm", description: OCM repository holding the site's software}
ocmTarget: {type: string, default: "https://127.0.0.1:5001/ocm", description: the site registry's OCM repository}
ocmTargetCa: {type: string, default: "", description: CA bundle (path on the ocm worker) of the site registry}
ocmComponent: {type: string, default: example.apeiro.dev/edge-app}
ocmVersion: {type: string, default: 1.0.0}
ocmSigningKey: {type: string, default: "file:/etc/apeiro/site-signing.pem", description: reference to the site signing key}
ocmSigningPublicKey: {type: string, default: "file:/etc/apeiro/site-signing.pub"}
"""

EDGE_SITE_STEP = """
name: ship_software
uses: component.transport
description: copy the site's software by value into the site registry, sign it there and verify it
needs: [prepare_registry]
with:
  source: {url: "${{ inputs.ocmSource }}"}
  target:
    url: "${{ inputs.ocmTarget }}"
    username: apeiro
    password_ref: env:APEIRO_REGISTRY_SITE_PASSWORD
    ca_bundle: "${{ inputs.ocmTargetCa }}"
  components:
    - {name: "${{ inputs.ocmComponent }}", version: "${{ inputs.ocmVersion }}"}
  mode: by-value
  recursive: true
  sign:
    name: site
    private_key_ref: "${{ inputs.ocmSigningKey }}"
    public_key_ref: "${{ inputs.ocmSigningPublicKey }}"
"""


def pipeline() -> dict[str, Any]:
    step = yaml.safe_load(EDGE_SITE_STEP)
    step["needs"] = ["prepare_registry"]
    return {
        "apiVersion": "apeiro.dev/v1alpha1",
        "kind": "Pipeline",
        "metadata": {"name": "ocm-ship"},
        "spec": {
            "inputs": yaml.safe_load(EDGE_SITE_INPUTS),
            "steps": [{"name": "prepare_registry", "uses": "core.echo", "with": {"values": {"ok": True}}}, step],
            "outputs": {
                "verified": "steps.ship_software.outputs.verified",
                "versions": "size(steps.ship_software.outputs.versions)",
            },
        },
    }


def test_step_validates_against_the_catalog() -> None:
    validate_definition(pipeline(), load_catalog())


async def test_edge_site_step_runs(
    dev_client: Client, registries: Registries, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    part = ex.OCMExamplePart(registries.source, registries.site, prefix=f"demo-{uuid.uuid4().hex[:6]}")
    part.start(tmp_path)
    inputs = part.pipeline_inputs()
    monkeypatch.setenv("APEIRO_REGISTRY_SITE_PASSWORD", registries.site.password or "")
    workers = build_workers(dev_client, [queues.PIPELINE, queues.OCM])
    async with workers[0], workers[1]:
        handle = await start_pipeline(dev_client, pipeline(), inputs, workflow_id=f"ocm-ship-{uuid.uuid4().hex[:8]}")
        result = await handle.result()
    outputs = result["outputs"] if isinstance(result, dict) else result.outputs
    assert outputs["verified"] is True and outputs["versions"] == 2
    async with registries.site_client() as site:
        got = await read_version(site, RepoBase.parse(str(inputs["ocmTarget"])), ex.MAIN, ex.VERSION)
    pub = sg.load_public_key(Path(str(inputs["ocmSigningPublicKey"]).removeprefix("file:")).read_bytes())
    assert sg.verify_descriptor(got.descriptor, name="site", public_key=pub, strict=True).valid


async def test_cli_transfer_follows_the_workflow(
    dev_client: Client,
    dev_landscape: Any,
    registries: Registries,
    example: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import asyncio

    from workers.cli import main

    address = dev_landscape.part("temporal").endpoints["address"]
    monkeypatch.setenv("TEMPORAL_ADDRESS", address)
    monkeypatch.setenv("APEIRO_REGISTRY_SITE_PASSWORD", registries.site.password or "")
    target = f"{registries.site.url}/cli-{uuid.uuid4().hex[:6]}"
    argv = [
        "ocm",
        "transfer",
        example,
        target,
        f"{ex.MAIN}:{ex.VERSION}",
        "--sign",
        f"site=file:{registries.keys / 'site.pem'}",
        "--sign-public-key",
        f"file:{registries.keys / 'site.pub'}",
        "--target-username",
        "apeiro",
        "--target-password-ref",
        "env:APEIRO_REGISTRY_SITE_PASSWORD",
        "--target-ca",
        registries.site.endpoints["ca_bundle"],
    ]
    workers = build_workers(dev_client, [queues.OCM])
    async with workers[0]:
        code = await asyncio.to_thread(main, argv)
    out = capsys.readouterr().out
    assert code == 0, out
    assert '"verified": true' in out and '"outcome": "copied"' in out
