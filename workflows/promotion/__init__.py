"""Ring promotion: one workflow per (pipeline, version), one coordinator per pipeline.

``PromotionWorkflow`` (id ``promotion-<pipeline>-<version>``) validates the definition (PromQL in an
activity), registers with the coordinator (which numbers versions, blocks versions that failed and
supersedes older runs), then for each ring in order: takes the ring from the coordinator (one
promotion per ring at a time), runs the entry gates, applies flag actions, deploys every target Stage
(bounded parallelism) and waits for Ready, and runs the verify gates concurrently. All gates Passed or
Overridden: the ring is verified. Failed (or TimedOut in verify, or Error with ``rollbackOnError``):
the ring rolls back to its last verified version (never a rollback of a rollback), its flags are
reverted, the version is blocked, and the run stops. Error retries with backoff, then, like
Inconclusive, pauses the gate for a person (retry, override, roll back, abort).

``PromotionCoordinatorWorkflow`` (id ``promotion-coordinator-<pipeline>``) talks to runs by signals
only and continues as new when its history grows. ``PromotionStepWorkflow`` is the ``promotion.run``
pipeline step: it starts the promotion as a child with the deterministic id.

The package, one concern a module: ``ring.py`` (``PromotionWorkflow``, the ring state machine),
``gating.py`` (running a phase's gates: timeouts, Error retries, pauses, overrides), ``gates/`` (one
evaluator per gate type behind ``gates.base.GateEvaluator``, unit-tested with a fake clock),
``deploy.py`` (Stages, flags, rollback), ``operator.py`` (approvals, overrides, pause/abort/rollback,
status), ``coordinator.py`` (``PromotionCoordinatorWorkflow`` with typed events), ``step.py``
(``PromotionStepWorkflow``).
"""

from __future__ import annotations

from workflows.promotion.coordinator import PromotionCoordinatorWorkflow
from workflows.promotion.ring import PromotionWorkflow
from workflows.promotion.step import PromotionStepWorkflow

__all__ = ["WORKFLOWS", "PromotionCoordinatorWorkflow", "PromotionStepWorkflow", "PromotionWorkflow"]

WORKFLOWS = [PromotionWorkflow, PromotionCoordinatorWorkflow, PromotionStepWorkflow]
