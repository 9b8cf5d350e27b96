"""One evaluator per gate type behind one interface (``base.GateEvaluator``), found by the gate's
``type`` in :func:`evaluators` instead of an ``isinstance`` chain."""

from __future__ import annotations

from definitions.promotion import Defaults
from workflows.promotion.gates.approval import ApprovalEvaluator
from workflows.promotion.gates.base import Decision, GateContext, GateEvaluator
from workflows.promotion.gates.http_probe import HttpProbeEvaluator
from workflows.promotion.gates.prometheus import PrometheusEvaluator
from workflows.promotion.gates.soak import SoakEvaluator
from workflows.promotion.gates.test_suite import TestSuiteEvaluator
from workflows.promotion.gates.time_window import TimeWindowEvaluator
from workflows.promotion.gates.upstream import UpstreamVerifiedEvaluator

__all__ = ["Decision", "GateContext", "GateEvaluator", "evaluators"]


def evaluators(defaults: Defaults) -> dict[str, GateEvaluator]:
    """The evaluator for each gate ``type`` a definition may use, configured with the pipeline's defaults."""
    return {
        "soak": SoakEvaluator(),
        "prometheus": PrometheusEvaluator(defaults.prometheus or ""),
        "httpProbe": HttpProbeEvaluator(),
        "approval": ApprovalEvaluator(),
        "timeWindow": TimeWindowEvaluator(),
        "testSuite": TestSuiteEvaluator(),
        "upstreamVerified": UpstreamVerifiedEvaluator(),
    }
