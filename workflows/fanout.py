"""FanOutWorkflow: one chunk of a large forEach, run as a child so the parent's history stays small.

The parent passes the step, the expression context (without ``item``/``index``) and a slice of the
items; this workflow renders each item's arguments, runs at most ``max_parallel`` at once, and returns
one result per item. Item failures are reported, not raised: the parent decides what they mean.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from pydantic import BaseModel, Field
from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from definitions import limits
    from definitions.catalog import load_catalog
    from definitions.expressions import CostBudget, ExpressionError, Scope, render
    from definitions.pipeline import RetrySpec, Step
    from workflows.stepexec import InvocationContext, StepFailure, invoke, output_size_problem
    from workflows.user_errors import USER_DATA_ERRORS, describe_user_error

REGISTRY = load_catalog()

class FanOutRequest(BaseModel):
    parent_id: str
    pipeline: str
    site: str | None = None
    step: dict[str, Any]
    step_path: str
    context: dict[str, Any]
    items: list[Any]
    start_index: int = 0
    max_parallel: int = Field(default=10, ge=1)
    retry: RetrySpec
    timeout: timedelta | None = None

class ItemResult(BaseModel):
    index: int
    ok: bool
    outputs: Any = None
    error: str | None = None

class FanOutResult(BaseModel):
    results: list[ItemResult]

@workflow.defn(name="FanOutWorkflow")
class FanOutWorkflow:
    def __init__(self) -> None:
        self._done = 0
        self._total = 0

    @workflow.run
    async def run(self, request: FanOutRequest) -> FanOutResult:
        step = Step.model_validate(request.step)
        step_type = REGISTRY.get(step.uses)
        ctx = InvocationContext(parent_id=request.parent_id, pipeline=request.pipeline, site=request.site,
                                step_path=request.step_path)
        sem = asyncio.Semaphore(request.max_parallel)
        scope = Scope(request.context)  # converted to CEL once, shared by every item
        budgets: dict[int, CostBudget] = {}

        def item_scope(item: Any, index: int) -> Scope:
            # One CEL budget per workflow task, as in PipelineWorkflow._task_budget.
            task = workflow.info().get_current_history_length()
            if task not in budgets:
                budgets.clear()
                budgets[task] = CostBudget(limits.MAX_CEL_COST_PER_TASK)
            return Scope({"item": item, "index": index}, parent=scope, budget=budgets[task])
        self._total = len(request.items)

        async def one(offset: int, item: Any) -> ItemResult:
            index = request.start_index + offset
            async with sem:
                try:
                    args = render(step.with_, item_scope(item, index))
                    out = await invoke(step, step_type, args, ctx, retry=request.retry, timeout=request.timeout,
                                       index=index)
                    problem = output_size_problem(out)
                    if problem and workflow.patched("i17-runtime-limits"):
                        raise StepFailure(problem)
                    return ItemResult(index=index, ok=True, outputs=out)
                except (StepFailure, ExpressionError) as exc:
                    return ItemResult(index=index, ok=False, error=str(exc))
                except USER_DATA_ERRORS as exc:  # the one rule (workflows/failures.py): fail the item
                    return ItemResult(index=index, ok=False, error=describe_user_error(exc))
                finally:
                    self._done += 1

        results = await asyncio.gather(*(one(i, it) for i, it in enumerate(request.items)))
        return FanOutResult(results=list(results))

    @workflow.query
    def progress(self) -> dict[str, int]:
        return {"done": self._done, "total": self._total}

