"""Bounded histories in a long wave gate: a fleet rollout whose gate between waves runs 40 Prometheus
checks continues as new at the gate's waits once its history passes the bound (patch
``i13-rollout-gate-continue-as-new-v2``), carrying the gate's progress: each check is taken once, the
gate's deadline stays where it was, a vote cast in the task that continues as new counts, a pause sent
during the gate holds the next wave, and the next wave runs once. (Time-skipping server, the real
freeze workflow, an in-memory garden and Prometheus.)

No step waits on wall-clock luck: time moves only by ``env.sleep``; a signal or update is followed
by waiting (fetch_history, generous timeout) until the run it reached has completed its workflow task,
so the history lengths the test reasons about are exact."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pytest
from temporalio import activity
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client, WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from activities.freeze import ACTIVITIES as FREEZE_ACTIVITIES
from definitions import queues
from definitions.cluster import ShootKey, WaitShootInput
from definitions.cluster_day2 import HibernationState, SetHibernationInput
from definitions.cluster_plan import Readiness
from definitions.promotion_runs import GateStatus, PromQuery, PromResult
from definitions.rollout import RolloutInput, RolloutResult, RolloutStatus, SelectInput, WaveApproval
from tests.support import sandboxed_worker
from workflows.cluster_day2 import ClusterHibernationWorkflow
from workflows.freeze import FreezeWorkflow
from workflows.rollout import FleetRolloutWorkflow

pytestmark = [pytest.mark.workflow]

#: The smallest bound an input accepts; one Prometheus check costs about ten events.
BOUND = 50
CHECKS = 40
SHOOTS = ["s0", "s1", "s2", "s3"]
DONE = EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED
CONTINUED = EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW
WORKFLOW_TASK = {
    DONE,
    EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED,
    EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED,
    EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED,
    EventType.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT,
}


@dataclass
class World:
    """The garden and Prometheus as the rollout sees them, recorded."""

    client: Client
    env: WorkflowEnvironment
    hibernated: list[str] = field(default_factory=list)
    #: When each query ran (server time, so skipped time counts).
    queries: list[datetime] = field(default_factory=list)
    #: Queries (1-based) that cannot run (HTTP 503).
    errors: set[int] = field(default_factory=set)

    def activities(self) -> list[Any]:
        @activity.defn(name="gardener_select_shoots")
        async def select(inp: SelectInput) -> list[str]:
            return list(SHOOTS)

        @activity.defn(name="gardener_set_hibernation")
        async def set_hibernation(inp: SetHibernationInput) -> HibernationState:
            self.hibernated.append(inp.name)
            return HibernationState(generation=2, enabled=True, hibernated=True, changed=True)

        @activity.defn(name="gardener_wait_shoot")
        async def wait(inp: WaitShootInput) -> Readiness:
            return Readiness(ready=True, generation=inp.min_generation, observed_generation=inp.min_generation)

        @activity.defn(name="gardener_hibernation_state")
        async def state(inp: ShootKey) -> HibernationState:
            return HibernationState(generation=2, enabled=True, hibernated=True)

        @activity.defn(name="konfidence.prometheus_query")
        async def prometheus(q: PromQuery) -> PromResult:
            self.queries.append(activity.info().scheduled_time)
            if len(self.queries) in self.errors:
                return PromResult(ok=False, error="HTTP 503: unavailable")
            return PromResult(ok=True, value=0.01, samples=1)

        return [select, set_hibernation, wait, state, prometheus, *FREEZE_ACTIVITIES]


@pytest.fixture
async def world(ts_env: WorkflowEnvironment) -> AsyncIterator[World]:
    w = World(ts_env.client, ts_env)
    async with (
        sandboxed_worker(ts_env.client, queues.PIPELINE, [FreezeWorkflow], FREEZE_ACTIVITIES),
        sandboxed_worker(
            ts_env.client, queues.GARDENER, [FleetRolloutWorkflow, ClusterHibernationWorkflow], w.activities()
        ),
    ):
        yield w


def gates(timeout: str, count: int = CHECKS, **prometheus: Any) -> list[dict[str, Any]]:
    return [
        {
            "type": "prometheus",
            "name": "error-rate",
            "query": "sum(rate(errors_total[1m]))",
            "successCondition": "result < 0.05",
            "interval": "30s",
            "count": count,
            "timeout": timeout,
            **prometheus,
        },
        {"type": "approval", "name": "sign-off", "approvers": ["bob", "carol"], "quorum": 2},
    ]


async def start(
    client: Client, wid: str, wave_gates: list[dict[str, Any]], **defaults: Any
) -> WorkflowHandle[Any, Any]:
    inp = {
        "operation": "cluster.hibernate",
        "with": {"enabled": True},
        "rollout": {
            "selector": {"namespace": "garden-edge", "matchLabels": {"fleet": "x"}},
            "waves": [1, "100%"],
            "maxInFlight": 3,
            "gates": wave_gates,
            "defaults": {"prometheus": "http://prometheus.example:9090", **defaults},
        },
        "continueAsNewAfter": BOUND,
    }
    return await client.start_workflow(
        "FleetRolloutWorkflow", RolloutInput.model_validate(inp), id=wid, task_queue=queues.GARDENER
    )


@dataclass
class Run:
    """One run of the chain: its events and the input it started with (the carry of the run before)."""

    run_id: str
    events: list[HistoryEvent]
    input: RolloutInput

    @property
    def continued(self) -> bool:
        return self.events[-1].event_type == CONTINUED

    @property
    def idle(self) -> bool:
        """Its latest workflow task completed (none scheduled or running)."""
        task = [e.event_type for e in self.events if e.event_type in WORKFLOW_TASK]
        return bool(task) and task[-1] == DONE


async def runs(client: Client, handle: WorkflowHandle[Any, Any]) -> list[Run]:
    """Every run of the chain ``handle`` started, in order (following ContinuedAsNew)."""
    out, run_id = [], handle.first_execution_run_id or handle.result_run_id
    assert run_id is not None
    while True:
        history = await client.get_workflow_handle(handle.id, run_id=run_id).fetch_history()
        started = history.events[0].workflow_execution_started_event_attributes
        [inp] = await client.data_converter.decode(started.input.payloads, [RolloutInput])
        out.append(Run(run_id, list(history.events), inp))
        if not out[-1].continued:
            return out
        run_id = history.events[-1].workflow_execution_continued_as_new_event_attributes.new_execution_run_id


async def handled(client: Client, handle: WorkflowHandle[Any, Any], send: Awaitable[Any]) -> list[Run]:
    """Send a signal or update (``send``), then wait until the chain has grown and its current run
    completed its latest workflow task: the runs then."""
    before = sum(len(r.events) for r in await runs(client, handle))
    await send
    async with asyncio.timeout(60):
        while True:
            chain = await runs(client, handle)
            if sum(len(r.events) for r in chain) > before and chain[-1].idle:
                return chain
            await asyncio.sleep(0.05)


def gate(st: RolloutStatus, name: str) -> GateStatus:
    return next(g for g in st.waves[1].gates if g.name == name)


async def test_a_long_wave_gate_continues_as_new_and_takes_each_check_once(world: World) -> None:
    client = world.client
    handle = await start(client, "rollout-long-gate", gates(timeout="2h"))

    # 40 checks 30 s apart (20 minutes): about ten events each, so the gate continues as new many times
    await world.env.sleep(timedelta(minutes=25))
    st = await handle.query("status", result_type=RolloutStatus)
    assert gate(st, "sign-off").state == "Waiting" and st.waiting_approvals == ["1/sign-off"], st
    metric = gate(st, "error-rate")
    assert metric.outcome == "Passed" and metric.reason.startswith(f"{CHECKS} measurements, 0 failed"), metric
    assert len(world.queries) == CHECKS  # each check queried exactly once over all runs
    gaps = [b - a for a, b in zip(world.queries, world.queries[1:], strict=False)]
    assert all(timedelta(seconds=30) <= g < timedelta(seconds=31) for g in gaps), gaps  # none early, none twice
    assert world.hibernated == ["s0"]  # the canary once, no wave again

    chain = await runs(client, handle)
    carried = [r.input.carried for r in chain[1:] if r.input.carried is not None]
    in_gate = [c.gates[0] for c in carried if c.gates and c.gates[0].gate == "error-rate"]
    assert len(in_gate) >= 2, f"continued as new only {len(in_gate)} times inside the gate"
    assert all(not c.gates_done and c.wave == 1 for c in carried)
    # the deadline each run was carried is the one the gate started with: two hours after it began
    assert metric.started_at is not None
    assert {p.deadline for p in in_gate} == {metric.started_at + timedelta(hours=2)}, in_gate
    taken = [p.counters.get("taken", 0) for p in in_gate]
    assert taken == sorted(taken) and 0 < taken[0] and taken[-1] < CHECKS, taken  # counted on, never restarted
    assert all(len(r.events) < BOUND + 15 for r in chain[:-1]), [len(r.events) for r in chain]

    # the operator pauses while the gate waits: kept across the continue-as-new, it holds the next wave
    chain = await handled(client, handle, handle.signal("pause", "alice"))

    # bob votes in the very workflow task that passes the bound: the run continues as new right there,
    # after his update finished, and his vote is carried. A signal adds 4 events (its task starts at
    # +3, which must stay below the bound); the vote's task starts at +2 and must reach it.
    while len(chain[-1].events) + 2 < BOUND:
        assert len(chain[-1].events) + 3 < BOUND, f"{len(chain[-1].events)} events: no signal fits before the vote"
        chain = await handled(client, handle, handle.signal("pause", "alice"))  # (noise; still paused)
    before = len(chain)
    vote = WaveApproval(wave=1, approver="bob", comment="canary fine")
    chain = await handled(client, handle, handle.execute_update("approve_wave", vote))
    assert len(chain) == before + 1, "bob's vote did not make the run continue as new"
    voted = chain[before - 1]
    assert voted.continued
    kinds = [e.event_type for e in voted.events]
    assert EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED in kinds[-4:], kinds[-6:]
    carry = chain[-1].input.carried
    assert carry is not None and carry.paused and carry.gates[0].gate == "sign-off"
    assert [(v.approver, v.comment) for v in gate(carry.status, "sign-off").votes] == [("bob", "canary fine")]
    st = await handle.query("status", result_type=RolloutStatus)
    assert [v.approver for v in gate(st, "sign-off").votes] == ["bob"] and st.waiting_approvals == ["1/sign-off"]

    # carol completes the quorum; paused, the next wave waits for the resume
    await handle.execute_update("approve_wave", WaveApproval(wave=1, approver="carol"))
    await world.env.sleep(timedelta(minutes=5))
    st = await handle.query("status", result_type=RolloutStatus)
    assert gate(st, "sign-off").outcome == "Passed" and world.hibernated == ["s0"], st.message
    await handle.signal("resume", "alice")
    res = RolloutResult.model_validate(await handle.result())
    assert res.state == "done", res.message
    assert Counter(world.hibernated) == Counter(SHOOTS)  # the canary once, the next wave once
    assert len(world.queries) == CHECKS
    final = {g.name: g for g in res.waves[1].gates}
    assert [g.outcome for g in final.values()] == ["Passed", "Passed"]
    assert [(v.approver, v.comment) for v in final["sign-off"].votes] == [("bob", "canary fine"), ("carol", "")]
    assert res.waves[1].state == "done"


async def test_a_gate_deadline_is_not_reset_by_continuing_as_new(world: World) -> None:
    """40 checks would take 20 minutes; the gate's 10 minute timeout ends it after about 20 checks,
    several runs later, 10 minutes after the gate began (a deadline reset per run never would)."""
    handle = await start(world.client, "rollout-gate-deadline", gates(timeout="10m")[:1])
    res = RolloutResult.model_validate(await handle.result())
    assert res.state == "stopped", res.message
    assert res.message.startswith("gate error-rate before wave 1 TimedOut: no result within 10m"), res.message
    metric = res.waves[1].gates[0]
    assert metric.started_at is not None and metric.finished_at is not None
    assert timedelta(minutes=10) <= metric.finished_at - metric.started_at < timedelta(minutes=10, seconds=2)
    assert 19 <= len(world.queries) <= 21 and world.hibernated == ["s0"]
    chain = await runs(world.client, handle)
    assert sum(1 for r in chain if r.input.carried and r.input.carried.gates) >= 2, [len(r.events) for r in chain]


async def test_a_gate_in_error_backoff_continues_as_new_keeping_its_backoff_and_deadline(world: World) -> None:
    """The third query cannot run: Error, retried after 5 minutes. Operator traffic fills the history
    during the backoff: the rollout continues as new there, the retry comes 5 minutes after the error
    (not after the continue-as-new), and the 15-minute timeout still counts from the gate's start."""
    world.errors = {3}
    wave_gates = gates(timeout="15m", consecutiveErrorLimit=1)[:1]
    handle = await start(world.client, "rollout-gate-backoff", wave_gates, errorBackoff="5m", errorRetries=1)
    await world.env.sleep(timedelta(minutes=2))
    st = await handle.query("status", result_type=RolloutStatus)
    assert len(world.queries) == 3 and "retrying in 5m (0 retries left)" in gate(st, "error-rate").reason, st
    chain = await runs(world.client, handle)
    before = len(chain)
    while len(chain) == before:  # a signal adds 4 events: at most a dozen pass any bound of 50
        chain = await handled(world.client, handle, handle.signal("resume", "noise"))
    carry = chain[-1].input.carried
    assert carry is not None and carry.gates[0].stage == "backoff" and carry.gates[0].retries == 0, carry
    assert len(world.queries) == 3  # nothing retried early

    res = RolloutResult.model_validate(await handle.result())
    assert res.state == "stopped", res.message
    assert res.message.startswith("gate error-rate before wave 1 TimedOut: no result within 15m"), res.message
    assert timedelta(minutes=5) <= world.queries[3] - world.queries[2] < timedelta(minutes=5, seconds=2)
    metric = res.waves[1].gates[0]
    assert metric.started_at is not None and metric.finished_at is not None
    assert timedelta(minutes=15) <= metric.finished_at - metric.started_at < timedelta(minutes=15, seconds=2)
    assert world.queries[-1] - world.queries[0] < timedelta(minutes=15) and world.hibernated == ["s0"]


def test_a_continued_run_knows_its_waves_before_its_first_task() -> None:
    """A vote or pause that reaches a continued run in its first workflow task (sent while the run before
    continued as new) runs before ``run``: ``__init__`` (``workflow.init``) has restored the carried
    waves, so the vote is validated against them and the pause is kept, not overwritten."""
    from definitions.promotion_runs import GateProgress
    from definitions.rollout import RolloutCarry, WaveStatus

    waiting = GateStatus(name="sign-off", type="approval", phase="wave", state="Waiting", needed=2)
    status = RolloutStatus(
        state="running", continued=3, waves=[WaveStatus(index=0), WaveStatus(index=1, gates=[waiting])]
    )
    carry = RolloutCarry(
        continued=3, wave=1, gates_done=False, status=status, gates=[GateProgress(ring="wave-1", gate="sign-off")]
    )
    raw = {
        "operation": "cluster.hibernate",
        "with": {"enabled": True},
        "rollout": {
            "selector": {"namespace": "garden-edge"},
            "gates": [{"type": "approval", "name": "sign-off", "approvers": ["bob", "carol"], "quorum": 2}],
        },
        "carried": carry.model_dump(by_alias=True),
    }
    wf = FleetRolloutWorkflow(RolloutInput.model_validate(raw).model_dump(by_alias=True))
    wf._check_approval(WaveApproval(wave=1, approver="bob"))  # (raised before: no waves, no input yet)
    with pytest.raises(ValueError, match="may not approve"):
        wf._check_approval(WaveApproval(wave=1, approver="mallory"))
    wf.pause("alice")
    assert wf._paused and wf._status.continued == 3 and wf._status is wf._inp.carried.status  # type: ignore[union-attr]
