"""``testSuite``: trigger a suite by POST; its result arrives by the ``report_test_result`` signal or,
with ``resultUrl``, by polling every ``interval``."""

from __future__ import annotations

from temporalio.common import RetryPolicy

from definitions.promotion import GateOutcome, TestSuiteGate
from definitions.promotion_runs import TestPoll, TestPollResult, TestResult, TestTrigger
from workflows.promotion.gates.base import QUERY_TIMEOUT, Decision, GateContext, measure, wait_until

TRIGGER_RETRY = RetryPolicy(maximum_attempts=5, non_retryable_error_types=["TestTrigger"])


class TestSuiteEvaluator:
    __test__ = False  # not a pytest class

    async def evaluate(self, gate: TestSuiteGate, ctx: GateContext) -> Decision:
        gs = ctx.status
        if not ctx.progress.triggered:  # a continued run waits for the suite it triggered before
            ctx.set_test_result(None)
            run = {"pipeline": ctx.pipeline, "version": ctx.version, "ring": ctx.ring, "workflow_id": ctx.workflow_id}
            trigger = TestTrigger(url=gate.url, gate=gs.name, **run)
            await ctx.activity(
                "konfidence.trigger_tests", trigger, start_to_close_timeout=QUERY_TIMEOUT, retry_policy=TRIGGER_RETRY
            )
            ctx.progress.triggered = True
        wait_until(ctx, "test suite triggered; waiting for its result", gs.next_check)
        while ctx.test_result() is None:
            gs.next_check = ctx.now() + gate.interval if gate.result_url else None
            arrived = await ctx.wait(
                lambda: ctx.test_result() is not None, timeout=gate.interval if gate.result_url else None
            )
            if not arrived:
                res: TestPollResult = await ctx.activity(
                    "konfidence.poll_tests",
                    TestPoll(url=gate.result_url or ""),
                    result_type=TestPollResult,
                    start_to_close_timeout=QUERY_TIMEOUT,
                )
                if res.finished:
                    ctx.set_test_result(TestResult(ring=ctx.ring, gate=gs.name, passed=res.passed, detail=res.detail))
        result = ctx.test_result()
        assert result is not None
        measure(ctx, "Passed" if result.passed else "Failed", detail=result.detail)
        if result.passed:
            return Decision(GateOutcome.PASSED, f"tests passed {result.detail}".strip())
        return Decision(GateOutcome.FAILED, f"tests failed: {result.detail}".strip(": "))
