"""`apeiro schedule apply/list/trigger` against the dev server (the time-skipping server has no Schedules)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    ScheduleSpec,
)

from definitions import queues
from definitions.library import EXAMPLES
from definitions.schedules import load_schedule_set
from landscape.landscape import Landscape
from tests.integration.conftest import apeiro, cli_env
from tests.triggers_support import write_definitions
from triggers.schedules import plan_apply, validate_entries
from workers.worker import build_workers

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("triggers-dev")]

FILE_V1 = """
apiVersion: apeiro.dev/v1alpha1
kind: ScheduleSet
schedules:
  - id: t-nightly-echo
    pipeline: hook-echo
    inputs: {message: nightly}
    cron: ["30 2 * * *"]
    timezone: Europe/Berlin
    overlap: buffer-one
    jitter: 5m
  - id: t-weekly-echo
    pipeline: hook-echo
    inputs: {message: weekly}
    calendars: [{dayOfWeek: "2,4", hour: 22, comment: "Tue/Thu 22:00"}]
    every: [12h]
    paused: true
    note: paused by the test
"""

FILE_V2 = """
apiVersion: apeiro.dev/v1alpha1
kind: ScheduleSet
schedules:
  - id: t-nightly-echo
    pipeline: hook-echo
    inputs: {message: nightly-v2}
    cron: ["45 3 * * *"]
    timezone: Europe/Berlin
    overlap: skip
"""


async def _wait_listed(client: Client, ids: set[str], present: bool = True) -> None:
    for _ in range(100):
        listed = {s.id async for s in await client.list_schedules()}
        if (ids <= listed) if present else not (ids & listed):
            return
        await asyncio.sleep(0.1)


async def test_apply_create_update_delete_and_leave_foreign_alone(
    dev_landscape: Landscape, dev_client: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    defs = write_definitions(tmp_path)
    monkeypatch.setenv("APEIRO_DEFINITIONS", str(defs))
    env = cli_env(dev_landscape, APEIRO_DEFINITIONS=str(defs))
    v1, v2 = tmp_path / "v1.yaml", tmp_path / "v2.yaml"
    v1.write_text(FILE_V1)
    v2.write_text(FILE_V2)
    await dev_client.create_schedule(
        "t-foreign",
        Schedule(
            action=ScheduleActionStartWorkflow(
                "PipelineWorkflow", {"pipeline": "hook-echo"}, id="t-foreign", task_queue=queues.PIPELINE
            ),
            spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=__import__("datetime").timedelta(days=1))]),
        ),
    )

    dry = apeiro(["schedule", "apply", str(v1), "--dry-run"], env)
    assert dry.returncode == 0, dry.stderr
    assert "+ create t-nightly-echo" in dry.stdout and "dry run" in dry.stdout
    assert "t-nightly-echo" not in {s.id async for s in await dev_client.list_schedules()}

    res = apeiro(["schedule", "apply", str(v1)], env)
    assert res.returncode == 0, res.stderr
    assert "2 created" in res.stdout
    desc = await dev_client.get_schedule_handle("t-nightly-echo").describe()
    assert desc.schedule.spec.cron_expressions == ["30 2 * * *"] or desc.schedule.spec.calendars
    assert desc.schedule.spec.time_zone_name == "Europe/Berlin"
    assert desc.schedule.policy.overlap == ScheduleOverlapPolicy.BUFFER_ONE
    assert desc.schedule.spec.jitter is not None and desc.schedule.spec.jitter.total_seconds() == 300
    weekly = await dev_client.get_schedule_handle("t-weekly-echo").describe()
    assert weekly.schedule.state.paused and weekly.schedule.state.note == "paused by the test"

    again = apeiro(["schedule", "apply", str(v1)], env)
    assert "0 created, 0 updated, 0 deleted, 2 unchanged" in again.stdout, again.stdout

    await _wait_listed(dev_client, {"t-nightly-echo", "t-weekly-echo", "t-foreign"})
    res = apeiro(["schedule", "apply", str(v2)], env)
    assert res.returncode == 0, res.stderr
    assert "~ update t-nightly-echo" in res.stdout and "- delete t-weekly-echo" in res.stdout
    assert "ignore t-foreign" in res.stdout
    desc = await dev_client.get_schedule_handle("t-nightly-echo").describe()
    assert desc.schedule.policy.overlap == ScheduleOverlapPolicy.SKIP
    arg = dev_client.data_converter.payload_converter.from_payload(desc.schedule.action.args[0])  # type: ignore[union-attr,arg-type]
    assert arg["inputs"] == {"message": "nightly-v2"}
    await _wait_listed(dev_client, {"t-weekly-echo"}, present=False)
    listed = apeiro(["schedule", "list"], env)
    assert listed.returncode == 0, listed.stderr
    assert "t-nightly-echo" in listed.stdout and "t-foreign" in listed.stdout
    assert "t-weekly-echo" not in listed.stdout
    assert (await dev_client.get_schedule_handle("t-foreign").describe()).schedule is not None

    # Trigger now: the scheduled action runs the pipeline through a real worker.
    worker = build_workers(dev_client, [queues.PIPELINE])[0]
    async with worker:
        trig = apeiro(["schedule", "trigger", "t-nightly-echo"], env)
        assert trig.returncode == 0, trig.stderr
        for _ in range(100):
            d = await dev_client.get_schedule_handle("t-nightly-echo").describe()
            if d.info.recent_actions:
                break
            await asyncio.sleep(0.1)
        run = d.info.recent_actions[-1].action
        result = await dev_client.get_workflow_handle(run.workflow_id, run_id=run.first_execution_run_id).result()
    assert result["outputs"]["message"] == "nightly-v2"
    for sid in ("t-nightly-echo", "t-foreign"):
        await dev_client.get_schedule_handle(sid).delete()


async def test_invalid_schedule_file_is_refused(dev_landscape: Landscape, tmp_path: Path) -> None:
    defs = write_definitions(tmp_path)
    env = cli_env(dev_landscape, APEIRO_DEFINITIONS=str(defs))
    bad = tmp_path / "bad.yaml"
    bad.write_text(FILE_V2.replace("message: nightly-v2", "count: many").replace("Europe/Berlin", "Mars/Olympus"))
    res = apeiro(["schedule", "apply", str(bad)], env)
    assert res.returncode == 1 and "unknown time zone 'Mars/Olympus'" in res.stderr
    bad.write_text(FILE_V2.replace("message: nightly-v2", "count: many"))
    res = apeiro(["schedule", "apply", str(bad)], env)
    assert res.returncode == 1 and "inputs.count" in res.stderr and "inputs.message" in res.stderr


def test_shipped_schedule_file_validates(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("APEIRO_DEFINITIONS", raising=False)
    schedules = load_schedule_set(EXAMPLES.parent / "schedules.yaml")
    assert {s.id for s in schedules.schedules} >= {"site-reinventory", "fleet-maintenance", "component-reverify"}
    assert validate_entries(schedules) == []


async def test_plan_of_shipped_file_on_empty_namespace(dev_client: Client) -> None:
    plan = await plan_apply(dev_client, load_schedule_set(EXAMPLES.parent / "schedules.yaml"))
    assert {e.id for e in plan.create} == {"site-reinventory", "fleet-maintenance", "component-reverify"}
