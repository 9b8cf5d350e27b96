"""A konfidence worker on the time-skipping server with stand-in Stage and metric activities.

Calendars, flag files, validation and coordinator registration run for real; Stages and Prometheus
are a small in-memory world the tests script (breaches, flaky errors, Stages that never get Ready).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio import activity
from temporalio.client import Client, WorkflowHandle
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities import konfidence as real
from activities.freeze import ACTIVITIES as FREEZE_ACTIVITIES
from definitions import queues
from definitions.promotion_runs import (
    ProbeRequest,
    ProbeResult,
    PromotionOutcome,
    PromotionRequest,
    PromotionStatus,
    PromQuery,
    PromResult,
    StageDeploy,
    StageDeployResult,
    TestTrigger,
)
from workers.worker import workflow_runner
from workflows.promotion import WORKFLOWS


@dataclass
class World:
    stages: dict[str, str] = field(default_factory=dict)  # "ns/name" -> version
    vectors: dict[str, str] = field(default_factory=dict)  # "ns/name" -> "component:version"
    last: dict[str, dict[str, Any]] = field(default_factory=dict)  # "ns/name" -> the vector deployed last
    deployments: list[tuple[str, str]] = field(default_factory=list)
    never_ready: set[str] = field(default_factory=set)
    #: Successive Prometheus answers: a float, None (no data) or an Exception text ("!msg").
    metric: Callable[[int], float | str | None] = lambda n: 0.01
    queries: int = 0
    triggered: list[TestTrigger] = field(default_factory=list)

    def activities(self) -> list[Any]:
        @activity.defn(name="konfidence.deploy_stage")
        async def deploy_stage(req: StageDeploy) -> StageDeployResult:
            where = f"{req.target.landscape}:" if req.target.landscape else ""
            key = f"{where}{req.target.namespace}/{req.target.stage}"
            previous = self.stages.get(key)
            before = self.last.get(key)
            self.last[key] = dict(req.vector)
            self.stages[key] = req.vector["version"]
            self.vectors[key] = f"{req.vector['component']}:{req.vector['version']}"
            self.deployments.append((key, req.vector["version"]))
            if key in self.never_ready:
                raise ApplicationError(f"Stage {key} did not become Ready within 600s (HealthCheckFailed)",
                                       type="StageNotReady", non_retryable=True)
            prev = None if before is None else {**before, "version": previous}
            return StageDeployResult(stage=key, previous_vector=prev, vector=req.vector, message="ready")

        @activity.defn(name="konfidence.prometheus_query")
        async def prometheus_query(req: PromQuery) -> PromResult:
            self.queries += 1
            value = self.metric(self.queries)
            if isinstance(value, str):
                return PromResult(ok=False, error=value)
            return PromResult(ok=True, value=value, samples=0 if value is None else 1)

        @activity.defn(name="konfidence.http_probe")
        async def http_probe(req: ProbeRequest) -> ProbeResult:
            return ProbeResult(ok=True, status=200, body={"status": "ok"})

        @activity.defn(name="konfidence.trigger_tests")
        async def trigger_tests(req: TestTrigger) -> None:
            self.triggered.append(req)

        return [deploy_stage, prometheus_query, http_probe, trigger_tests, real.poll_tests, real.validate,
                real.register, real.next_allowed, real.apply_flags, real.restore_flags, *FREEZE_ACTIVITIES]


def definition(tmp: Path, *, approval: bool = True, **ring_changes: Any) -> dict[str, Any]:
    rings: list[dict[str, Any]] = [
        {"name": "dev", "targets": [{"stage": "dev"}], "verifyGates": [{"type": "soak", "duration": "10m"}]},
        {"name": "canary", "targets": [{"stage": "canary-1"}, {"stage": "canary-2"}], "parallelism": 2,
         "flags": {"path": str(tmp / "flags-canary.json"),
                   "actions": [{"flag": "new-ui", "defaultVariant": "on", "variants": {"on": True, "off": False}}]},
         "verifyGates": [{"type": "soak", "duration": "5m"},
                         {"type": "prometheus", "name": "error-rate", "query": "sum(rate(errors_total[1m]))",
                          "successCondition": "result < 0.05", "interval": "30s", "count": 3,
                          "consecutiveErrorLimit": 2}]},
        {"name": "production", "targets": [{"stage": "prod"}],
         "entryGates": [{"type": "approval", "approvers": ["bob", "carol"], "quorum": 1}] if approval else [],
         "verifyGates": [{"type": "upstreamVerified", "rings": ["canary"], "minSoak": "1m"}]},
    ]
    for name, change in ring_changes.items():
        ring = next(r for r in rings if r["name"] == name)
        ring.update(change)
    return {"apiVersion": "apeiro.dev/v1alpha1", "kind": "Promotion",
            "metadata": {"name": f"app-{uuid.uuid4().hex[:6]}"},
            "spec": {"artifact": {"component": "example.apeiro.dev/edge-app", "repository": "http://registry"},
                     "defaults": {"prometheus": "http://prometheus", "errorBackoff": "10s", "errorRetries": 1},
                     "calendars": {}, "rings": rings}}


@dataclass
class Harness:
    client: Client
    world: World
    tmp: Path
    env: WorkflowEnvironment
    started: list[str] = field(default_factory=list)

    async def cleanup(self) -> None:
        """Terminate what the test left running (coordinators idle on timers), so no later test waits on them."""
        for wid in self.started:
            with contextlib.suppress(Exception):
                await self.client.get_workflow_handle(wid).terminate("test finished")

    def track(self, data: dict[str, Any], wid: str) -> None:
        self.started += [wid, f"promotion-coordinator-{data['metadata']['name']}"]

    async def start(self, data: dict[str, Any], version: str, *, requested_by: str = "alice",
                    override_reason: str | None = None, raw: bool = False) -> WorkflowHandle[Any, Any]:
        wid = f"promotion-{data['metadata']['name']}-{version}"
        arg: Any = ({"promotion": data, "version": version, "requested_by": requested_by} if raw else
                    PromotionRequest(promotion=copy.deepcopy(data), version=version, requested_by=requested_by,
                                     override_reason=override_reason))
        self.track(data, wid)
        return await self.client.start_workflow("PromotionWorkflow", arg, id=wid, task_queue=queues.KONFIDENCE)

    async def outcome(self, handle: WorkflowHandle[Any, Any]) -> PromotionOutcome:
        return PromotionOutcome.model_validate(await handle.result())

    async def status(self, handle: WorkflowHandle[Any, Any]) -> PromotionStatus:
        return await handle.query("status", result_type=PromotionStatus)

    async def wait_for(self, handle: WorkflowHandle[Any, Any], check: Callable[[PromotionStatus], bool],
                       tries: int = 100, step: timedelta = timedelta(seconds=20)) -> PromotionStatus:
        """Poll the status query, moving the time-skipping clock ``step`` between polls (time only skips
        on its own while a client awaits a result, which would also skip past approval timeouts)."""
        st: PromotionStatus | None = None
        for _ in range(tries):
            try:
                st = await self.status(handle)
            except RPCError:  # not started yet (a pipeline step starts it)
                st = None
            if st is not None and check(st):
                return st
            await asyncio.sleep(0.02)
            await self.env.sleep(step)
        raise AssertionError(f"condition never held; last status: {st.model_dump_json(indent=1) if st else None}")


@pytest.fixture
async def harness(ts_env: WorkflowEnvironment, tmp_path: Path) -> AsyncIterator[Harness]:
    world = World()
    worker = Worker(ts_env.client, task_queue=queues.KONFIDENCE, workflows=WORKFLOWS, activities=world.activities(),
                    workflow_runner=workflow_runner())
    async with worker:
        harness = Harness(ts_env.client, world, tmp_path, ts_env)
        try:
            yield harness
        finally:
            await harness.cleanup()
