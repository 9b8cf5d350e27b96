"""`apeiro rollout status|pause|resume|abort|approve` against the dev server: a pipeline run whose
`fleet.rollout` step waits at an approval gate, addressed by the run id (with and without `--step`) and
by the rollout's own workflow id; refusals exit 1, unknown ids 3."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from typing import Any

import pytest
import yaml
from temporalio.client import Client

from definitions import queues
from landscape.kubeapi.part import KubeApiServer
from tests.integration.cluster.test_cluster_workflows import NS, garden, shoot
from tests.integration.cluster.test_rollout import fleet
from workers.cli import main
from workers.cli.pipeline import start_pipeline
from workers.worker import build_workers

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("cluster")]


def pipeline(api: KubeApiServer, tag: str) -> dict[str, Any]:
    return {
        "apiVersion": "apeiro.dev/v1alpha1",
        "kind": "Pipeline",
        "metadata": {"name": "fleet-cli"},
        "spec": {
            "steps": [
                {
                    "name": "hibernate_fleet",
                    "uses": "fleet.rollout",
                    "with": {
                        "operation": "cluster.hibernate",
                        "with": {"enabled": True},
                        "garden": garden(api).model_dump(),
                        "rollout": {
                            "selector": {"namespace": NS, "matchLabels": {"fleet": tag}},
                            "waves": [1, "100%"],
                            "gates": [{"type": "approval", "approvers": ["bob"]}],
                        },
                    },
                }
            ]
        },
    }


async def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = await asyncio.to_thread(main, list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


async def test_rollout_cli_by_run_and_by_workflow_id(
    dev_client: Client,
    gardener_queue: str,
    garden_api: KubeApiServer,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TEMPORAL_ADDRESS", dev_client.service_client.config.target_host)
    tag, names = await fleet(dev_client, gardener_queue, garden_api, 3)
    run_id = f"fleet-cli-{uuid.uuid4().hex[:6]}"
    async with contextlib.AsyncExitStack() as stack:
        for w in build_workers(dev_client, [queues.PIPELINE, queues.GARDENER]):
            await stack.enter_async_context(w)
        handle = await start_pipeline(dev_client, pipeline(garden_api, tag), {}, workflow_id=run_id)

        # By the run id alone (its one fleet.rollout step), as JSON, until the canary is done.
        for _ in range(150):
            code, out, _ = await cli(capsys, "rollout", "status", run_id, "-o", "json")
            if code == 0 and json.loads(out)["waiting_approvals"]:
                break
            await asyncio.sleep(0.2)
        st = json.loads(out)
        assert st["workflow_id"] == f"{run_id}/hibernate_fleet" and st["waiting_approvals"] == ["1/approval"]
        assert [t["state"] for t in st["waves"][0]["targets"]] == ["succeeded"]

        # By run id + step, as text: every wave, every target, why it waits, how to approve.
        code, out, _ = await cli(capsys, "rollout", "status", run_id, "--step", "hibernate_fleet")
        assert code == 0
        assert "waiting for approval (1 needed, from bob): approve the next wave" in out
        assert all(n in out for n in names) and "WHY PENDING" in out
        assert f"apeiro rollout approve {run_id}/hibernate_fleet --wave 1 --as USER" in out

        # By the rollout's own workflow id, as YAML.
        code, out, _ = await cli(capsys, "rollout", "status", f"{run_id}/hibernate_fleet", "-o", "yaml")
        assert code == 0 and yaml.safe_load(out)["waves"][1]["state"] == "gate"

        # Refusals: not an eligible approver (1); unknown step, unknown run (3).
        code, _, err = await cli(capsys, "rollout", "approve", run_id, "--as", "mallory")
        assert code == 1 and "'mallory' may not approve; eligible: bob" in err
        code, _, err = await cli(capsys, "rollout", "status", run_id, "--step", "nope")
        assert code == 3 and "has no step 'nope'; its fleet.rollout steps: hibernate_fleet" in err
        code, _, err = await cli(capsys, "rollout", "status", "no-such-run")
        assert code == 3 and "no run or rollout 'no-such-run'" in err and "Traceback" not in err

        assert (await cli(capsys, "rollout", "pause", run_id, "--as", "alice"))[0] == 0
        assert (await cli(capsys, "rollout", "resume", run_id, "--as", "alice"))[0] == 0
        code, out, _ = await cli(capsys, "rollout", "approve", run_id, "--as", "bob", "--comment", "canary ok")
        assert code == 0 and "bob approved wave 1" in out
        result = await handle.result()
        assert result["steps"][0]["state"] == "succeeded"
        assert all(shoot(garden_api, n)["status"]["hibernated"] is True for n in names)

        code, _, err = await cli(capsys, "rollout", "abort", run_id, "--as", "alice", "--reason", "late")
        assert code == 1 and "has ended (completed); nothing to abort" in err
        code, out, _ = await cli(capsys, "rollout", "status", run_id)
        assert code == 0 and "state: done" in out and "approval: Passed: approved by bob" in out
