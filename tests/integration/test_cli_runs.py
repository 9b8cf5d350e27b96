"""`apeiro list | watch | cancel | retry | status` as operators run them, against the dev server:
filters, -o json, exit codes (0 ok, 1 refused or failed, 3 not found)."""

from __future__ import annotations

import asyncio
import json

import pytest

from definitions.runs import PipelineStatus, StepState
from landscape.landscape import Landscape
from tests.integration.conftest import apeiro, cli_env
from tests.support import pausing_flaky, pipeline
from tests.workflow.conftest import Engine
from workers.cli.repair import rerun

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("dev-server")]


async def run_cli(args: list[str], env: dict[str, str]) -> tuple[int, str, str]:
    done = await asyncio.to_thread(apeiro, args, env)
    return done.returncode, done.stdout, done.stderr


async def test_list_retry_watch_cancel_and_exit_codes(dev_engine: Engine, dev_landscape: Landscape) -> None:
    env = cli_env(dev_landscape)
    h = await dev_engine.start(
        pipeline(
            [
                pausing_flaky("cli-flaky"),
                {"name": "after", "uses": "core.echo", "needs": ["flaky"], "with": {"values": {"x": 1}}},
            ],
            name="cli-runs",
        )
    )
    for _ in range(100):
        st = await h.query("status", result_type=PipelineStatus)
        if st.steps[0].state is StepState.FAILED:
            break
        await asyncio.sleep(0.1)

    code, out, err = await run_cli(["status", "no-such-run-xyz"], env)
    assert code == 3 and "not found" in err

    code, out, err = await run_cli(["list", "--state", "running", "-o", "json"], env)
    assert code == 0, err
    assert h.id in [r["workflow_id"] for r in json.loads(out)]

    code, out, err = await run_cli(["retry", h.id, "--step", "after", "--as", "op", "--reason", "x"], env)
    assert code == 1 and "not failed" in err  # refused by the validator, nothing changed

    code, out, err = await run_cli(["retry", h.id, "--step", "flaky", "--as", "op", "--reason", "fixed the BMC"], env)
    assert code == 0, err
    code, out, err = await run_cli(["watch", h.id, "--interval", "0.3", "-o", "json"], env)
    assert code == 0, err
    last = json.loads(out.strip().split("\n}\n")[-1] if "\n}\n" in out.strip() else out)
    assert last["state"] == "succeeded"

    # A finished run: a repair is a clear refusal (exit 1), not "not found" (tests/unit/test_cli_habits.py
    # checks the same for every command through rpc_fail).
    code, out, err = await run_cli(["retry", h.id, "--step", "flaky", "--as", "op", "--reason", "late"], env)
    assert code == 1 and "refused, the run has ended" in err and "Traceback" not in err, err

    slow = await dev_engine.start(
        pipeline([{"name": "hold", "uses": "test.probe", "with": {"key": "cli-hold", "sleep": 30}}], name="cli-runs")
    )
    code, out, err = await run_cli(["cancel", slow.id, "--as", "op", "--reason", "wrong version"], env)
    assert code == 0, err
    code, out, err = await run_cli(["watch", slow.id, "--interval", "0.3"], env)
    assert code == 1 and "cancel" in err


async def test_rerun_from_a_step_reuses_the_earlier_outputs(dev_engine: Engine, dev_landscape: Landscape) -> None:
    env = cli_env(dev_landscape)
    h = await dev_engine.start(
        pipeline(
            [
                {"name": "a", "uses": "test.probe", "with": {"key": "rerun-a"}},
                {"name": "b", "uses": "test.probe", "needs": ["a"], "with": {"key": "rerun-b", "fail_calls": 1}},
                {
                    "name": "c",
                    "uses": "core.echo",
                    "needs": ["b"],
                    "with": {"values": {"from_a": "${{ steps.a.outputs.key }}"}},
                },
            ],
            name="cli-rerun",
        )
    )
    with pytest.raises(Exception, match="failed"):
        await h.result()
    code, _out, err = await run_cli(["rerun", h.id, "--from", "nope"], env)
    assert code == 1 and "no step 'nope'" in err
    # In process: the CLI's subprocess does not know the test probe step type.
    started, reused = await rerun(dev_engine.client, h.id, "b", "op", f"{h.id}-again")
    assert reused == ["a"]
    await started.result()
    assert dev_engine.probe.calls == {"rerun-a": 1, "rerun-b": 2}  # a did not run again, b did
    st = await dev_engine.client.get_workflow_handle(f"{h.id}-again").query("status", result_type=PipelineStatus)
    assert [s.state.value for s in st.steps] == ["succeeded"] * 3
    assert st.steps[0].message == f"reused from run {h.id}"
