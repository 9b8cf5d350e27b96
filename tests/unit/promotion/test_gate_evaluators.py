"""Each gate evaluator decides from what it sees, with a fake clock and scripted activities (no Temporal)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from pydantic import TypeAdapter

from definitions.promotion import Calendar, Defaults, Gate, GateOutcome
from definitions.promotion_runs import (
    GateStatus,
    NextAllowedResult,
    ProbeResult,
    PromResult,
    TestPollResult,
    TestResult,
    Vote,
)
from tests.unit.promotion.fake_gate_context import START, FakeGateContext
from workflows.promotion.gates import Decision, evaluators

GATE: TypeAdapter[Any] = TypeAdapter(Gate)


def ctx_for(gate: dict[str, Any], **kw: Any) -> tuple[Any, FakeGateContext]:
    model = GATE.validate_python(gate)
    needed = model.quorum if model.type == "approval" else 0
    return model, FakeGateContext(
        status=GateStatus(name=gate.get("name", gate["type"]), type=model.type, phase="verify", needed=needed), **kw
    )


async def decide(gate: Any, ctx: FakeGateContext, defaults: Defaults | None = None) -> Decision:
    return await evaluators(defaults or Defaults()).get(gate.type).evaluate(gate, ctx)  # type: ignore[union-attr]


def answers(*values: Any) -> Any:
    it = iter(values)
    return lambda _arg: next(it)


def test_every_gate_type_has_an_evaluator() -> None:
    types = {a.__args__[0] for a in [c.model_fields["type"].annotation for c in Gate.__origin__.__args__]}  # type: ignore[attr-defined]
    assert types == set(evaluators(Defaults()))


async def test_soak_waits_its_duration_then_passes() -> None:
    gate, ctx = ctx_for({"type": "soak", "duration": "10m"})
    decision = await decide(gate, ctx)
    assert decision == Decision(GateOutcome.PASSED, "soaked 10m")
    assert ctx.clock == START + timedelta(minutes=10)
    assert ctx.status.next_check == START + timedelta(minutes=10)


class TestPrometheus:
    gate = {
        "type": "prometheus",
        "query": "up",
        "successCondition": "result < 0.05",
        "interval": "30s",
        "count": 3,
        "failureLimit": 0,
        "consecutiveErrorLimit": 2,
    }

    async def test_passes_after_count_good_measurements_interval_apart(self) -> None:
        gate, ctx = ctx_for(
            self.gate,
            activities={"konfidence.prometheus_query": answers(*[PromResult(ok=True, value=0.01, samples=1)] * 3)},
        )
        decision = await decide(gate, ctx, Defaults(prometheus="http://prom"))
        assert decision.outcome is GateOutcome.PASSED
        assert [t - START for t, _, _ in ctx.calls] == [timedelta(0), timedelta(seconds=30), timedelta(seconds=60)]
        assert ctx.calls[0][2].address == "http://prom"
        assert [m.outcome for m in ctx.status.measurements] == ["Passed"] * 3

    async def test_one_bad_measurement_over_the_limit_fails(self) -> None:
        gate, ctx = ctx_for(
            self.gate,
            activities={
                "konfidence.prometheus_query": answers(
                    PromResult(ok=True, value=0.01, samples=1), PromResult(ok=True, value=0.2, samples=1)
                )
            },
        )
        decision = await decide(gate, ctx)
        assert decision.outcome is GateOutcome.FAILED
        assert "result=0.2" in decision.reason and "1 of 2" in decision.reason

    async def test_consecutive_query_errors_are_error_not_failure(self) -> None:
        gate, ctx = ctx_for(
            self.gate,
            activities={
                "konfidence.prometheus_query": answers(
                    PromResult(ok=False, error="connection refused"), PromResult(ok=False, error="connection refused")
                )
            },
        )
        decision = await decide(gate, ctx)
        assert decision.outcome is GateOutcome.ERROR
        assert "2 consecutive query errors" in decision.reason

    async def test_no_data_is_inconclusive_by_default(self) -> None:
        gate, ctx = ctx_for(
            self.gate, activities={"konfidence.prometheus_query": answers(PromResult(ok=True, value=None, samples=0))}
        )
        assert (await decide(gate, ctx)).outcome is GateOutcome.INCONCLUSIVE


class TestHttpProbe:
    gate = {
        "type": "httpProbe",
        "url": "http://app/health",
        "condition": 'body.status == "ok"',
        "consecutiveSuccesses": 2,
        "interval": "10s",
        "failureLimit": 1,
    }

    async def test_needs_consecutive_successes(self) -> None:
        ok, bad = ProbeResult(ok=True, status=200, body={"status": "ok"}), ProbeResult(ok=True, status=503)
        gate, ctx = ctx_for(self.gate, activities={"konfidence.http_probe": answers(ok, bad, ok, ok)})
        decision = await decide(gate, ctx)
        assert decision == Decision(GateOutcome.PASSED, "2 consecutive successful probes")
        assert ctx.clock == START + timedelta(seconds=30)

    async def test_too_many_failures_fail(self) -> None:
        bad = ProbeResult(ok=True, status=200, body={"status": "degraded"})
        gate, ctx = ctx_for(self.gate, activities={"konfidence.http_probe": answers(bad, bad)})
        decision = await decide(gate, ctx)
        assert decision.outcome is GateOutcome.FAILED and "2 failed probes" in decision.reason

    async def test_unreachable_three_times_is_error(self) -> None:
        down = ProbeResult(ok=False, error="connect timeout")
        gate, ctx = ctx_for(self.gate, activities={"konfidence.http_probe": answers(down, down, down)})
        assert (await decide(gate, ctx)).outcome is GateOutcome.ERROR


class TestApproval:
    gate = {"type": "approval", "approvers": ["bob", "carol", "dave"], "quorum": 2}

    async def test_waits_for_the_quorum(self) -> None:
        gate, ctx = ctx_for(self.gate)

        def vote(who: str) -> Callable[[], None]:
            return lambda: ctx.status.votes.append(Vote(approver=who, approve=True, at=START))

        ctx.at(timedelta(minutes=5), vote("bob"))
        ctx.at(timedelta(minutes=65), vote("carol"))
        decision = await decide(gate, ctx)
        assert decision == Decision(GateOutcome.PASSED, "approved by bob, carol")
        assert ctx.clock == START + timedelta(minutes=65)
        assert ctx.status.reason.startswith("waiting for approval (2 needed, from bob, carol, dave)")

    async def test_one_rejection_fails(self) -> None:
        gate, ctx = ctx_for(self.gate)
        ctx.at(
            timedelta(minutes=1),
            lambda: ctx.status.votes.append(Vote(approver="dave", approve=False, comment="not on a Friday", at=START)),
        )
        assert await decide(gate, ctx) == Decision(GateOutcome.FAILED, "rejected by dave: not on a Friday")


class TestTimeWindow:
    gate = {"type": "timeWindow", "calendar": "business-hours"}

    async def test_passes_when_the_calendar_allows_now(self) -> None:
        gate, ctx = ctx_for(
            self.gate,
            calendars={"business-hours": Calendar()},
            activities={"konfidence.next_allowed": lambda req: NextAllowedResult(at=req.after)},
        )
        assert (await decide(gate, ctx)).outcome is GateOutcome.PASSED

    async def test_waits_until_the_next_allowed_instant(self) -> None:
        opens = START + timedelta(hours=3)

        def next_allowed(req: Any) -> NextAllowedResult:
            return NextAllowedResult(at=max(opens, req.after), reason="outside business hours")

        gate, ctx = ctx_for(
            self.gate, calendars={"business-hours": Calendar()}, activities={"konfidence.next_allowed": next_allowed}
        )
        decision = await decide(gate, ctx)
        assert decision.outcome is GateOutcome.PASSED
        assert ctx.clock == opens and len(ctx.calls) == 2
        assert ctx.status.next_check == opens

    async def test_a_calendar_change_makes_it_look_again_at_once(self) -> None:
        opens = START + timedelta(hours=3)
        gate, ctx = ctx_for(
            self.gate,
            calendars={"business-hours": Calendar(time_zone="UTC")},
            activities={
                "konfidence.next_allowed": lambda req: NextAllowedResult(
                    at=req.after if req.calendar.time_zone == "Europe/Berlin" else opens, reason="closed"
                )
            },
        )

        def change() -> None:
            ctx.calendars["business-hours"] = Calendar(time_zone="Europe/Berlin")
            ctx.generation += 1

        ctx.at(timedelta(minutes=10), change)
        assert (await decide(gate, ctx)).outcome is GateOutcome.PASSED
        assert ctx.clock == START + timedelta(minutes=10)


class TestTestSuite:
    async def test_result_by_signal(self) -> None:
        gate, ctx = ctx_for(
            {"type": "testSuite", "url": "http://ci/trigger"}, activities={"konfidence.trigger_tests": lambda _: None}
        )
        ctx.at(
            timedelta(minutes=7),
            lambda: ctx.set_test_result(
                TestResult(ring="canary", gate="testSuite", passed=False, detail="3 of 40 failed")
            ),
        )
        decision = await decide(gate, ctx)
        assert decision == Decision(GateOutcome.FAILED, "tests failed: 3 of 40 failed")
        trigger = ctx.calls[0][2]
        assert (trigger.pipeline, trigger.version, trigger.ring) == ("app", "1.2.0", "canary")

    async def test_result_by_polling(self) -> None:
        gate, ctx = ctx_for(
            {"type": "testSuite", "url": "http://ci/trigger", "resultUrl": "http://ci/result", "interval": "1m"},
            activities={
                "konfidence.trigger_tests": lambda _: None,
                "konfidence.poll_tests": answers(
                    TestPollResult(finished=False), TestPollResult(finished=True, passed=True)
                ),
            },
        )
        decision = await decide(gate, ctx)
        assert decision.outcome is GateOutcome.PASSED
        assert ctx.clock == START + timedelta(minutes=2)


class TestUpstreamVerified:
    gate = {"type": "upstreamVerified", "rings": ["canary"], "minSoak": "1h"}

    async def test_fails_when_upstream_never_verified(self) -> None:
        gate, ctx = ctx_for(self.gate)
        assert await decide(gate, ctx) == Decision(GateOutcome.FAILED, "not verified in canary")

    @pytest.mark.parametrize(
        ("verified_ago", "waited"), [(timedelta(minutes=20), timedelta(minutes=40)), (timedelta(hours=2), timedelta(0))]
    )
    async def test_soaks_upstream_for_min_soak(self, verified_ago: timedelta, waited: timedelta) -> None:
        verified: dict[str, datetime] = {"canary": START - verified_ago}
        gate, ctx = ctx_for(self.gate, verified=verified)
        assert (await decide(gate, ctx)).outcome is GateOutcome.PASSED
        assert ctx.clock == START + waited
