"""``prometheus``: Argo Rollouts-style analysis. ``count`` measurements ``interval`` apart; more than
``failureLimit`` failed ones fail the gate (the version is bad); ``consecutiveErrorLimit`` queries in a
row that could not run make it Error (the check is broken, not the version); no data follows ``noData``."""

from __future__ import annotations

from definitions.expressions import ExpressionError, evaluate_bool
from definitions.promotion import GateOutcome, PrometheusGate
from definitions.promotion_runs import PromQuery, PromResult
from workflows.promotion.gates.base import Decision, GateContext, measure, measure_once, sleep_until, wait_until


class PrometheusEvaluator:
    def __init__(self, default_address: str = "") -> None:
        self.default_address = default_address

    async def evaluate(self, gate: PrometheusGate, ctx: GateContext) -> Decision:
        address = gate.address or self.default_address
        gs, progress = ctx.status, ctx.progress
        counters = progress.counters
        failures, errors, taken = (counters.get(k, 0) for k in ("failures", "errors", "taken"))
        if progress.until is not None:  # a continued run: the rest of the wait for the next measurement
            wait_until(ctx, None, progress.until)
            await sleep_until(ctx, progress.until)
            progress.until, gs.next_check = None, None
        while taken < gate.count:
            gs.state = "Running"
            gs.reason = f"measuring ({taken}/{gate.count} taken, {failures} failed)"
            res = await measure_once(
                ctx, "konfidence.prometheus_query", PromQuery(address=address, query=gate.query), PromResult
            )
            if not res.ok:
                errors += 1
                measure(ctx, "Error", detail=res.error)
                if errors >= gate.consecutive_error_limit:
                    return Decision(
                        GateOutcome.ERROR,
                        f"{errors} consecutive query errors (limit {gate.consecutive_error_limit}); last: {res.error}",
                    )
            else:
                errors = 0
                taken += 1
                if res.value is None:
                    measure(ctx, "NoData", detail=f"no data; noData={gate.no_data}")
                    if gate.no_data == "inconclusive":
                        return Decision(GateOutcome.INCONCLUSIVE, "the query returned no data")
                    if gate.no_data == "error":
                        return Decision(GateOutcome.ERROR, "the query returned no data")
                    if gate.no_data == "fail":
                        failures += 1
                else:
                    try:
                        good = evaluate_bool(gate.success_condition, {"result": res.value})
                    except ExpressionError as exc:
                        return Decision(GateOutcome.ERROR, f"successCondition: {exc}")
                    measure(ctx, "Passed" if good else "Failed", res.value)
                    if not good:
                        failures += 1
                if failures > gate.failure_limit:
                    return Decision(
                        GateOutcome.FAILED,
                        f"`{gate.success_condition}` false with result={res.value} "
                        f"({failures} of {taken} measurements failed, limit "
                        f"{gate.failure_limit})",
                    )
            counters.update(failures=failures, errors=errors, taken=taken)
            if taken < gate.count:
                progress.until = ctx.now() + gate.interval
                wait_until(ctx, None, progress.until)
                await sleep_until(ctx, progress.until)
                progress.until, gs.next_check = None, None
        return Decision(GateOutcome.PASSED, f"{taken} measurements, {failures} failed (limit {gate.failure_limit})")
