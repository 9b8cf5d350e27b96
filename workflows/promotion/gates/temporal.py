"""The :class:`~workflows.promotion.gates.base.GateContext` a running promotion hands its evaluators:
workflow time, timers, conditions and activities, and the run's calendars, test results and verified
rings."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow

from definitions.promotion_runs import GateProgress, GateStatus, TestResult
from workflows.promotion.state import GateKey, PromotionState

#: workflow.patched() id: a Prometheus measurement runs as a local activity (in the worker that runs
#: the workflow, recorded as a marker) instead of a round trip through the server's activity queue.
#: At 50 promotions at once (bench.promotion) each round trip cost ~1 s of gate overhead and the dev
#: server was the busiest process. Runs from before it keep scheduling ordinary activities.
LOCAL_QUERY_PATCH = "promotion-gate-local-query"
#: Short, one-attempt measurements registered on the same task queue (konfidence) as the workflow.
LOCAL_MEASUREMENTS = frozenset({"konfidence.prometheus_query"})


class TemporalGateContext:
    def __init__(self, run: PromotionState, ring: str, status: GateStatus) -> None:
        assert run._req is not None
        self._run = run
        self._key: GateKey = (ring, status.name)
        self.status = status
        self.pipeline = run._p.name
        self.version = run._req.version
        self.ring = ring
        self.workflow_id = workflow.info().workflow_id
        self.progress: GateProgress = run._progress.setdefault(self._key, GateProgress(ring=ring, gate=status.name))

    def now(self) -> datetime:
        return workflow.now()

    async def sleep(self, duration: timedelta) -> None:
        await workflow.sleep(duration)

    async def wait(self, condition: Callable[[], bool], timeout: timedelta | None = None) -> bool:
        try:
            await workflow.wait_condition(condition, timeout=timeout)
        except TimeoutError:
            return False
        return True

    async def activity(self, name: str, arg: Any, **options: Any) -> Any:
        self._run._in_flight += 1  # no continue-as-new while a check is out
        try:
            if name in LOCAL_MEASUREMENTS and workflow.patched(LOCAL_QUERY_PATCH):
                return await workflow.execute_local_activity(name, arg, **options)
            return await workflow.execute_activity(name, arg, **options)
        finally:
            self._run._in_flight -= 1

    def calendar(self, name: str) -> Any:
        return self._run._calendars[name]

    def calendar_generation(self) -> int:
        return self._run._calendar_gen

    def test_result(self) -> TestResult | None:
        return self._run._test_results.get(self._key)

    def set_test_result(self, result: TestResult | None) -> None:
        if result is None:
            self._run._test_results.pop(self._key, None)
        else:
            self._run._test_results[self._key] = result

    def verified_at(self, ring: str) -> datetime | None:
        return self._run._verified_at.get(ring)


async def finish_or_cancel(task: asyncio.Future[Any], also: Callable[[], bool], deadline: datetime) -> bool:
    """Wait until ``task`` is done, ``also()`` holds or ``deadline`` passes (at least a second); a task
    not done by then is cancelled. True when the task finished."""
    try:
        await workflow.wait_condition(
            lambda: task.done() or also(), timeout=max(deadline - workflow.now(), timedelta(seconds=1))
        )
    except TimeoutError:
        pass
    if task.done():
        return True
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    return False
