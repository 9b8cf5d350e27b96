"""``httpProbe``: GET a URL every ``interval`` until ``consecutiveSuccesses`` in a row (Passed) or more
than ``failureLimit`` failed probes (Failed); three probes in a row that cannot connect are Error."""

from __future__ import annotations

from datetime import timedelta

from temporalio.common import RetryPolicy

from definitions.expressions import ExpressionError, evaluate_bool
from definitions.promotion import GateOutcome, HttpProbeGate
from definitions.promotion_runs import ProbeRequest, ProbeResult
from workflows.promotion.gates.base import Decision, GateContext, measure, wait_until

QUERY_TIMEOUT = timedelta(seconds=30)
ONE_ATTEMPT = RetryPolicy(maximum_attempts=1)
#: Probes in a row that could not connect before the gate reports Error.
CONNECT_ERROR_LIMIT = 3


class HttpProbeEvaluator:
    async def evaluate(self, gate: HttpProbeGate, ctx: GateContext) -> Decision:
        successes = failures = errors = 0
        while True:
            res: ProbeResult = await ctx.activity(
                "konfidence.http_probe",
                ProbeRequest(url=gate.url),
                result_type=ProbeResult,
                start_to_close_timeout=QUERY_TIMEOUT,
                retry_policy=ONE_ATTEMPT,
            )
            if not res.ok:
                errors += 1
                measure(ctx, "Error", detail=res.error)
                if errors >= CONNECT_ERROR_LIMIT:
                    return Decision(GateOutcome.ERROR, f"{errors} probes in a row could not connect; last: {res.error}")
            else:
                errors = 0
                good = res.status in gate.expect_status
                detail = f"HTTP {res.status}"
                if good and gate.condition:
                    try:
                        good = evaluate_bool(gate.condition, {"body": res.body, "status": res.status})
                    except ExpressionError as exc:
                        good, detail = False, f"{detail}; condition: {exc}"
                measure(ctx, "Passed" if good else "Failed", float(res.status), detail)
                if good:
                    successes += 1
                else:
                    successes = 0
                    failures += 1
                if failures > gate.failure_limit:
                    return Decision(
                        GateOutcome.FAILED, f"{failures} failed probes of {gate.url} (limit {gate.failure_limit})"
                    )
                if successes >= gate.consecutive_successes:
                    return Decision(GateOutcome.PASSED, f"{successes} consecutive successful probes")
            wait_until(
                ctx,
                f"{successes}/{gate.consecutive_successes} consecutive successes, {failures} failures",
                ctx.now() + gate.interval,
            )
            await ctx.sleep(gate.interval)
