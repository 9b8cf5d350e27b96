"""``httpProbe``: GET a URL every ``interval`` until ``consecutiveSuccesses`` in a row (Passed) or more
than ``failureLimit`` failed probes (Failed); three probes in a row that cannot connect are Error."""

from __future__ import annotations

from definitions.expressions import ExpressionError, evaluate_bool
from definitions.promotion import GateOutcome, HttpProbeGate
from definitions.promotion_runs import ProbeRequest, ProbeResult
from workflows.promotion.gates.base import Decision, GateContext, measure, measure_once, sleep_until, wait_until

#: Probes in a row that could not connect before the gate reports Error.
CONNECT_ERROR_LIMIT = 3


class HttpProbeEvaluator:
    async def evaluate(self, gate: HttpProbeGate, ctx: GateContext) -> Decision:
        progress = ctx.progress
        counters = progress.counters
        successes, failures, errors = (counters.get(k, 0) for k in ("successes", "failures", "errors"))
        if progress.until is not None:  # a continued run: the rest of the wait for the next probe
            wait_until(ctx, None, progress.until)
            await sleep_until(ctx, progress.until)
            progress.until = None
        while True:
            res = await measure_once(ctx, "konfidence.http_probe", ProbeRequest(url=gate.url), ProbeResult)
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
            counters.update(successes=successes, failures=failures, errors=errors)
            progress.until = ctx.now() + gate.interval
            wait_until(
                ctx,
                f"{successes}/{gate.consecutive_successes} consecutive successes, {failures} failures",
                progress.until,
            )
            await sleep_until(ctx, progress.until)
            progress.until = None
