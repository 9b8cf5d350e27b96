"""Per-step-type metrics (started, failed, duration) from workers, through the SDK's metric meter.

Step types run either as activities (``core.echo``, ``component.verify``) or as child workflows
(``cluster.create`` -> ClusterCreateWorkflow). This interceptor counts both where they execute:
activities with :func:`temporalio.activity.metric_meter`, workflows with
:func:`temporalio.workflow.metric_meter`, which records nothing during replay, so workflow code
stays deterministic and a replayed history never counts twice. The meter feeds the process's
Temporal Runtime, i.e. the Prometheus endpoint ``APEIRO_METRICS_PORT`` opens; without one it is a
no-op.

Metrics (Prometheus names, :func:`workers.observability.runtime_from_env` sets the conventions):
``apeiro_step_started_total`` / ``apeiro_step_failed_total`` (counters), ``apeiro_step_duration_seconds``
(histogram of timedeltas, exported in seconds), labelled ``step_type`` (the registered step type,
or the activity/workflow type name for internals) and ``kind`` (activity|workflow).
"""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

from temporalio import activity, workflow
from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    ExecuteWorkflowInput,
    Interceptor,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
)

STARTED = "apeiro_step_started"
FAILED = "apeiro_step_failed"
DURATION = "apeiro_step_duration"

_TARGETS: dict[str, str] | None = None


def step_type_of(target: str) -> str:
    """The step type a workflow/activity type implements (first registered wins), else the type name."""
    global _TARGETS
    if _TARGETS is None:
        from definitions.catalog import load_catalog

        _TARGETS = {}
        for st in load_catalog().all():
            _TARGETS.setdefault(st.target, st.name)
    return _TARGETS.get(target, target)


def _first_line(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text.splitlines()[0][:300]


def _instruments(meter: Any) -> tuple[Any, Any, Any]:
    return (
        meter.create_counter(STARTED, "steps started (attempts for activities)"),
        meter.create_counter(FAILED, "steps failed (attempts for activities)"),
        meter.create_histogram_timedelta(DURATION, "step duration"),
    )


class _ActivityMetrics(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        info = activity.info()
        labels = {"step_type": step_type_of(info.activity_type), "kind": "activity"}
        started, failed, duration = _instruments(activity.metric_meter().with_additional_attributes(labels))
        started.add(1)
        t0 = time.monotonic()
        try:
            result = await super().execute_activity(input)
        except BaseException as exc:
            failed.add(1)
            # activity.logger attaches workflow id, run id, activity type and attempt to the record.
            activity.logger.warning(
                "step %s attempt %d failed: %s", labels["step_type"], info.attempt, _first_line(exc)
            )
            raise
        finally:
            duration.record(timedelta(seconds=time.monotonic() - t0))
        activity.logger.info("step %s finished in %d ms", labels["step_type"], int((time.monotonic() - t0) * 1000))
        return result


class _WorkflowMetrics(WorkflowInboundInterceptor):
    async def execute_workflow(self, input: ExecuteWorkflowInput) -> Any:
        info = workflow.info()
        labels = {"step_type": step_type_of(info.workflow_type), "kind": "workflow"}
        started, failed, duration = _instruments(workflow.metric_meter().with_additional_attributes(labels))
        started.add(1)  # the workflow meter skips recording while replaying
        t0 = workflow.time()
        try:
            return await super().execute_workflow(input)
        except workflow.ContinueAsNewError:
            raise  # the run goes on in a new execution; not a failure
        except BaseException:
            failed.add(1)
            raise
        finally:
            duration.record(timedelta(seconds=workflow.time() - t0))


class StepMetricsInterceptor(Interceptor):
    def __init__(self) -> None:
        step_type_of("")  # load the catalog here, on the host, not inside a workflow sandbox

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _ActivityMetrics(next)

    def workflow_interceptor_class(self, input: WorkflowInterceptorClassInput) -> type[WorkflowInboundInterceptor]:
        return _WorkflowMetrics
