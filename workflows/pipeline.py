"""PipelineWorkflow: interprets a Pipeline definition (a DAG of steps) durably.

- Independent steps run in parallel (bounded by ``spec.maxParallel``); a step starts when all its
  ``needs`` are finished. A failed step cancels its dependants (they never start) and the run fails
  with the step's name; independent branches still finish.
- ``forEach`` fans out over a list; large fan-outs run as ``FanOutWorkflow`` children in chunks so no
  single history grows past Temporal's limits.
- Long pipelines continue as new, carrying every step's record but only the outputs that later steps
  or the pipeline's outputs can still read; the ``status`` query keeps working.
- Builtins run inside this workflow: ``core.wait`` (timer), ``core.approval`` (the ``approve`` update),
  ``core.pipeline`` (a child PipelineWorkflow).

Input problems (bad JSON from the UI, an invalid definition, inputs of the wrong type) fail the
workflow at once with the path of every problem, never a workflow task that retries forever. Any
other exception from user data fails the step (or the run) with a message naming the step and field
(workflows/failures.py); the limits of definitions/limits.py are checked here again at run time.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ApplicationError, ChildWorkflowError

with workflow.unsafe.imports_passed_through():
    from pydantic import ValidationError

    from definitions import limits
    from definitions.catalog import load_catalog
    from definitions.core_steps import ApprovalArgs, ApprovalResult, SubPipelineArgs, WaitArgs, WaitResult
    from definitions.expressions import (
        CostBudget,
        ExpressionError,
        Scope,
        evaluate,
        evaluate_bool,
        references,
        render,
    )
    from definitions.pipeline import Pipeline, RetrySpec, Step
    from definitions.runs import (
        ApprovalDecision,
        ApprovalState,
        ApprovalVote,
        Continuation,
        PipelineRequest,
        PipelineResult,
        PipelineStatus,
        RunState,
        StepRecord,
        StepState,
        StepStatus,
    )
    from definitions.steptypes import StepKind, StepType
    from definitions.validate import DefinitionError, pydantic_problems, validate_definition
    from workflows.activity_options import SHORT_CALL
    from workflows.fanout import FanOutRequest, FanOutResult
    from workflows.stepexec import InvocationContext, StepFailure, describe_failure, invoke, output_size_problem
    from workflows.user_errors import USER_DATA_ERRORS, clip, describe_user_error

REGISTRY = load_catalog()

#: forEach lists longer than this run as FanOutWorkflow children, CHUNK items each.
INLINE_FOREACH_LIMIT = 50
CHUNK = 100
DEFAULT_FOREACH_PARALLEL = 10

#: workflow.patched() ids: behaviour added for issue 17, off when replaying runs started before it.
PATCH_CARRY_NEEDED = "i17-carry-needed-outputs"
PATCH_LIMITS = "i17-runtime-limits"


def _is_resumable(step_type: StepType) -> bool:
    """Builtins whose progress lives in the step record, so they survive continue-as-new."""
    return step_type.kind is StepKind.BUILTIN and step_type.target in ("wait", "approval")


@workflow.defn(name="PipelineWorkflow")
class PipelineWorkflow:
    def __init__(self) -> None:
        self._pipeline: Pipeline | None = None
        self._pipeline_name = "(loading)"
        self._inputs: dict[str, Any] = {}
        self._records: dict[str, StepRecord] = {}
        self._state = RunState.RUNNING
        self._error: str | None = None
        self._generation = 1
        self._suspending = False
        self._approval_args: dict[str, ApprovalArgs] = {}
        self._step_refs: dict[str, set[str] | None] = {}
        self._requested_by: str | None = None
        self._site: str | None = None
        self._depth = 0
        self._budget_task = -1
        self._budget = CostBudget(limits.MAX_CEL_COST_PER_TASK)

    # --- entry -----------------------------------------------------------------------------------

    @workflow.run
    async def run(self, request: Any) -> PipelineResult:
        try:
            return await self._run(request)
        except USER_DATA_ERRORS as exc:
            # The last line of the one rule (workflows/failures.py): data no retry can change fails
            # the run with its message; it never fails the workflow task.
            message = clip(f"pipeline {self._pipeline_name!r}: {describe_user_error(exc)}")
            self._fail_run(message)
            raise ApplicationError(message, type="InvalidData", non_retryable=True) from None

    async def _run(self, request: Any) -> PipelineResult:
        req = self._parse_request(request)
        self._requested_by = req.requested_by
        self._depth = req.depth
        if req.continuation is not None:
            definition, inputs = req.continuation.definition, req.continuation.inputs
            self._generation = req.continuation.generation
        elif req.definition is not None:
            definition, inputs = req.definition, req.inputs
        else:
            assert req.pipeline is not None
            self._pipeline_name = req.pipeline
            definition = await self._load_definition(req.pipeline)
            inputs = req.inputs
        try:
            pipeline, resolved = validate_definition(definition, REGISTRY, inputs=inputs, source="pipeline")
        except DefinitionError as exc:
            self._fail_run(str(exc))
            raise ApplicationError(str(exc), [str(p) for p in exc.problems], type="InvalidDefinition",
                                   non_retryable=True) from None
        self._pipeline, self._inputs = pipeline, resolved
        self._pipeline_name = pipeline.name
        site = resolved.get("site")
        self._site = site if isinstance(site, str) else None
        self._records = {s.name: StepRecord(name=s.name, uses=s.uses) for s in pipeline.spec.steps}
        if req.continuation is not None:
            for rec in req.continuation.records:
                if rec.name in self._records:
                    self._records[rec.name] = rec
        self._step_refs = {s.name: self._referenced_steps(s) for s in pipeline.spec.steps}

        tasks: dict[str, asyncio.Task[None]] = {}
        try:
            should_continue = await self._execute(tasks, req.continue_as_new_after)
        except asyncio.CancelledError:
            self._state = RunState.CANCELLED
            for task in tasks.values():
                task.cancel()
            if tasks:
                await asyncio.gather(*tasks.values(), return_exceptions=True)
            for rec in self._records.values():
                if not rec.state.terminal:
                    rec.state, rec.message = StepState.CANCELLED, "pipeline cancelled"
            raise
        if should_continue:
            await workflow.wait_condition(workflow.all_handlers_finished)
            records = list(self._records.values())
            if workflow.patched(PATCH_CARRY_NEEDED):
                records = self._carried_records()
            continuation = Continuation(definition=definition, inputs=resolved, records=records,
                                        generation=self._generation + 1)
            self._check_continuation_size(continuation)
            workflow.continue_as_new(PipelineRequest(
                requested_by=req.requested_by,
                continue_as_new_after=req.continue_as_new_after,
                continuation=continuation,
                depth=req.depth,
            ))
        return self._finish()

    def _carried_records(self) -> list[StepRecord]:
        """Records for the next run: every step's state, but outputs only where something can still
        read them (a step not finished yet, or the pipeline's outputs). Carrying every output made
        long runs exceed Temporal's 2 MiB payload limit on each continue-as-new attempt."""
        assert self._pipeline is not None
        wanted: set[str] = set()
        readers = [self._step_refs.get(n) for n, r in self._records.items() if not r.state.terminal]
        readers.append(self._output_refs())
        for refs in readers:
            if refs is None:
                return list(self._records.values())  # a computed step name: anything may be read
            wanted |= refs
        return [rec if rec.name in wanted or rec.outputs is None else rec.model_copy(update={"outputs": None})
                for rec in self._records.values()]

    def _check_continuation_size(self, continuation: Continuation) -> None:
        size = limits.json_size(continuation.model_dump(mode="json"))
        if size <= limits.MAX_CONTINUATION_BYTES or not workflow.patched(PATCH_LIMITS):
            return
        biggest = sorted(((limits.json_size(r.outputs), r.name) for r in continuation.records), reverse=True)[:3]
        largest = ", ".join(f"{name} ({n} bytes)" for n, name in biggest if n > 4)
        message = (f"pipeline {self._pipeline_name!r} must continue as new, but what it carries is {size} bytes, "
                   f"over the limit of {limits.size_text(limits.MAX_CONTINUATION_BYTES)}; largest step outputs "
                   f"still read by later steps: {largest or 'none'}. Make those outputs smaller (a step's "
                   "`outputs:` mapping can keep just the fields needed)")
        self._fail_run(message)
        raise ApplicationError(message, type="LimitExceeded", non_retryable=True)

    def _parse_request(self, request: Any) -> PipelineRequest:
        try:
            return PipelineRequest.model_validate(request)
        except ValidationError as exc:
            problems = [str(p) for p in pydantic_problems(exc)]
            message = ("invalid PipelineWorkflow input: " + "; ".join(problems) +
                       '. Expected e.g. {"pipeline": "edge-site", "inputs": {"site": "edge-1"}}')
            self._fail_run(message)
            raise ApplicationError(message, problems, type="InvalidInput", non_retryable=True) from None

    async def _load_definition(self, name: str) -> dict[str, Any]:
        from definitions import queues

        try:
            result: dict[str, Any] = await workflow.execute_activity(
                "pipeline.load_definition", name, task_queue=queues.PIPELINE,
                start_to_close_timeout=SHORT_CALL, result_type=dict,
            )
        except Exception as exc:
            message = f"cannot load pipeline {name!r}: {describe_failure(exc)}"
            self._fail_run(message)
            raise ApplicationError(message, type="UnknownPipeline", non_retryable=True) from None
        return result

    def _fail_run(self, message: str) -> None:
        self._state = RunState.FAILED
        self._error = message

    # --- the scheduler ---------------------------------------------------------------------------

    def _should_continue_as_new(self, threshold: int) -> bool:
        info = workflow.info()
        return info.get_current_history_length() >= threshold or info.is_continue_as_new_suggested()

    def _schedule(self, tasks: dict[str, asyncio.Task[None]]) -> None:
        """Start every step whose needs are finished; settle steps that cannot run. Repeat until stable."""
        assert self._pipeline is not None
        spec = self._pipeline.spec
        changed = True
        while changed:
            changed = False
            for step in spec.steps:
                rec = self._records[step.name]
                if step.name in tasks or rec.state.terminal:
                    continue
                if rec.state is StepState.PENDING:
                    needs = [self._records[n] for n in step.needs]
                    if not all(r.state.terminal for r in needs):
                        continue
                    blocked = [r.name for r in needs if r.state is StepState.CANCELLED
                               or (r.state is StepState.FAILED and not r.ignored_failure)]
                    if blocked:
                        self._settle(rec, StepState.CANCELLED, f"not run: needed step(s) {', '.join(blocked)} "
                                                               "did not succeed")
                        changed = True
                        continue
                    if len(tasks) >= spec.max_parallel:
                        return
                    if step.when is not None:
                        try:
                            run_it = evaluate_bool(step.when, self._scope(step))
                        except USER_DATA_ERRORS as exc:
                            self._settle(rec, StepState.FAILED, "", error=f"when: {describe_user_error(exc)}")
                            rec.ignored_failure = step.continue_on_error
                            changed = True
                            continue
                        if not run_it:
                            self._settle(rec, StepState.SKIPPED, f"skipped: when {step.when!r} is false")
                            changed = True
                            continue
                tasks[step.name] = asyncio.create_task(self._run_step(step))

    async def _execute(self, tasks: dict[str, asyncio.Task[None]], continue_after: int) -> bool:
        """Run the DAG to the end. Returns True when the run should continue as new."""
        draining = False
        while True:
            if not draining and self._should_continue_as_new(continue_after):
                draining = True
            if not draining:
                self._schedule(tasks)
            if not tasks:
                return draining and not all(r.state.terminal for r in self._records.values())
            if draining and all(_is_resumable(REGISTRY.get(self._records[n].uses)) for n in tasks):
                # Only timers and approvals left: their progress is in the records; hand them over.
                self._suspending = True
                for task in tasks.values():
                    task.cancel()
                await asyncio.gather(*tasks.values(), return_exceptions=True)
                tasks.clear()
                return True
            await workflow.wait(list(tasks.values()), return_when=asyncio.FIRST_COMPLETED)
            for name in [n for n, t in tasks.items() if t.done()]:
                task = tasks.pop(name)
                if not task.cancelled():
                    task.result()  # an engine bug surfaces here (and fails the task, to be fixed forward)

    # --- one step --------------------------------------------------------------------------------

    def _settle(self, rec: StepRecord, state: StepState, message: str, *, error: str | None = None) -> None:
        rec.state, rec.message, rec.error = state, clip(message), clip(error) if error is not None else None
        rec.finished_at = workflow.now()

    def _retry(self, step: Step, step_type: StepType) -> RetrySpec:
        assert self._pipeline is not None
        return step.retry or self._pipeline.spec.defaults.retry or RetrySpec(
            max_attempts=step_type.default_max_attempts)

    def _timeout(self, step: Step, step_type: StepType) -> timedelta | None:
        assert self._pipeline is not None
        return step.timeout or self._pipeline.spec.defaults.timeout or step_type.default_timeout

    def _path(self, step: Step) -> str:
        assert self._pipeline is not None
        return f"spec.steps[{self._pipeline.spec.steps.index(step)}]"

    async def _run_step(self, step: Step) -> None:
        rec = self._records[step.name]
        step_type = REGISTRY.get(step.uses)
        if rec.started_at is None:
            rec.started_at = workflow.now()
        rec.state = StepState.WAITING if _is_resumable(step_type) else StepState.RUNNING
        rec.message = ""
        field = "forEach" if step.for_each is not None else "with"  # what a user-data error names
        try:
            outputs: Any
            if step.for_each is not None:
                outputs = await self._run_for_each(step, step_type)
            else:
                args = render(step.with_, self._scope(step))
                field = f"uses ({step.uses})"
                outputs = await self._dispatch(step, step_type, args, None)
            if step.outputs:
                ctx = self._context(step)
                ctx["result"] = outputs
                scope = Scope(ctx, budget=self._task_budget())
                mapped: dict[str, Any] = {}
                for key, expr in step.outputs.items():
                    field = f"outputs.{key}"
                    mapped[key] = evaluate(expr, scope)
                outputs = mapped
            field = "outputs"
            problem = output_size_problem(outputs)
            if problem and workflow.patched(PATCH_LIMITS):
                raise StepFailure(problem)
            rec.outputs = outputs
            self._settle(rec, StepState.SUCCEEDED, "")
        except asyncio.CancelledError:
            if self._suspending and _is_resumable(step_type):
                raise  # handed over to the next run with its record intact
            self._settle(rec, StepState.CANCELLED, "cancelled")
        except (StepFailure, ExpressionError) as exc:
            if self._state is RunState.CANCELLED:
                self._settle(rec, StepState.CANCELLED, "pipeline cancelled")
            else:
                self._settle(rec, StepState.FAILED, "", error=str(exc))
                rec.ignored_failure = step.continue_on_error
        except USER_DATA_ERRORS as exc:
            # Not anticipated by the handling above, still the step's data: fail the step, name the field.
            self._settle(rec, StepState.FAILED, "", error=f"{self._path(step)}.{field}: {describe_user_error(exc)}")
            rec.ignored_failure = step.continue_on_error

    async def _dispatch(self, step: Step, step_type: StepType, args: Any, index: int | None) -> Any:
        if step_type.kind is StepKind.BUILTIN:
            if step_type.target == "wait":
                return await self._builtin_wait(step, step_type, args)
            if step_type.target == "approval":
                return await self._builtin_approval(step, step_type, args)
            if step_type.target == "PipelineWorkflow":
                return await self._builtin_subpipeline(step, step_type, args, index)
            raise StepFailure(f"builtin {step_type.target!r} is not implemented by this worker")
        return await invoke(step, step_type, args, self._invocation(step),
                            retry=self._retry(step, step_type), timeout=self._timeout(step, step_type), index=index)

    def _invocation(self, step: Step) -> InvocationContext:
        return InvocationContext(parent_id=workflow.info().workflow_id, pipeline=self._pipeline_name,
                                 site=self._site, step_path=self._path(step))

    # --- forEach ---------------------------------------------------------------------------------

    async def _run_for_each(self, step: Step, step_type: StepType) -> list[Any]:
        rec = self._records[step.name]
        items = evaluate(step.for_each, self._scope(step)) if isinstance(step.for_each, str) else step.for_each
        if not isinstance(items, list):
            raise StepFailure(f"{self._path(step)}.forEach must give a list, got {type(items).__name__}")
        if step_type.kind is StepKind.BUILTIN and step_type.target == "approval":
            raise StepFailure(f"{self._path(step)}: an approval cannot run forEach")
        rec.items_total, rec.items_done, rec.items_failed = len(items), 0, 0
        parallel = step.max_parallel or DEFAULT_FOREACH_PARALLEL
        if len(items) > INLINE_FOREACH_LIMIT and step_type.kind is not StepKind.BUILTIN:
            results = await self._fan_out_children(step, step_type, items, parallel)
        else:
            results = await self._fan_out_inline(step, step_type, items, parallel)
        outputs = [r[1] if r[0] else None for r in results]
        failures = [(i, r[2]) for i, r in enumerate(results) if not r[0]]
        rec.outputs = outputs
        if failures:
            first = "; ".join(f"[{i}] {msg}" for i, msg in failures[:3])
            more = f" (and {len(failures) - 3} more)" if len(failures) > 3 else ""
            raise StepFailure(f"{len(failures)} of {len(items)} items failed: {first}{more}")
        return outputs

    async def _fan_out_inline(self, step: Step, step_type: StepType, items: list[Any],
                              parallel: int) -> list[tuple[bool, Any, str]]:
        rec = self._records[step.name]
        sem = asyncio.Semaphore(parallel)
        base = self._scope(step)

        async def one(index: int, item: Any) -> tuple[bool, Any, str]:
            async with sem:
                try:
                    scope = Scope({"item": item, "index": index}, parent=base, budget=self._task_budget())
                    args = render(step.with_, scope)
                    out = await self._dispatch(step, step_type, args, index)
                    problem = output_size_problem(out)
                    if problem and workflow.patched(PATCH_LIMITS):
                        raise StepFailure(problem)
                    rec.items_done += 1
                    return True, out, ""
                except (StepFailure, ExpressionError) as exc:
                    rec.items_done += 1
                    rec.items_failed += 1
                    return False, None, str(exc)
                except USER_DATA_ERRORS as exc:
                    rec.items_done += 1
                    rec.items_failed += 1
                    return False, None, describe_user_error(exc)

        return list(await asyncio.gather(*(one(i, it) for i, it in enumerate(items))))

    async def _fan_out_children(self, step: Step, step_type: StepType, items: list[Any],
                                parallel: int) -> list[tuple[bool, Any, str]]:
        """Chunks of CHUNK items, each a FanOutWorkflow child; at most `parallel` items run at once."""
        from definitions import queues

        rec = self._records[step.name]
        per_child = min(parallel, CHUNK)
        sem = asyncio.Semaphore(max(1, parallel // per_child))
        base = self._context(step)
        chunks = [(start, items[start:start + CHUNK]) for start in range(0, len(items), CHUNK)]
        results: list[tuple[bool, Any, str]] = [(False, None, "not run")] * len(items)
        wf_id = workflow.info().workflow_id

        async def run_chunk(number: int, start: int, chunk: list[Any]) -> None:
            async with sem:
                child_id = f"{wf_id}/{step.name}/chunk-{number}"
                rec.child_workflow_ids.append(child_id)
                request = FanOutRequest(
                    parent_id=wf_id, pipeline=self._pipeline_name, site=self._site,
                    step=step.model_dump(mode="json", by_alias=True, exclude_none=True),
                    step_path=self._path(step), context=base, items=chunk, start_index=start,
                    max_parallel=per_child, retry=self._retry(step, step_type),
                    timeout=self._timeout(step, step_type),
                )
                try:
                    result: FanOutResult = await workflow.execute_child_workflow(
                        "FanOutWorkflow", request, id=child_id, task_queue=queues.PIPELINE,
                        result_type=FanOutResult,
                    )
                except ChildWorkflowError as exc:
                    message = describe_failure(exc)
                    for offset in range(len(chunk)):
                        results[start + offset] = (False, None, f"chunk {number} failed: {message}")
                    rec.items_done += len(chunk)
                    rec.items_failed += len(chunk)
                    return
                for item in result.results:
                    results[item.index] = (item.ok, item.outputs, item.error or "")
                    rec.items_done += 1
                    rec.items_failed += 0 if item.ok else 1

        await asyncio.gather(*(run_chunk(n, start, chunk) for n, (start, chunk) in enumerate(chunks)))
        return results

    # --- builtins --------------------------------------------------------------------------------

    async def _builtin_wait(self, step: Step, step_type: StepType, args: Any) -> dict[str, Any]:
        from workflows.stepexec import validate_args

        rec = self._records[step.name]
        wait = validate_args(step_type, args, self._path(step))
        assert isinstance(wait, WaitArgs)
        if rec.wait_until is None:
            rec.wait_until = wait.until if wait.until is not None else workflow.now() + (
                wait.duration or timedelta())
        remaining = rec.wait_until - workflow.now()
        if remaining > limits.MAX_DURATION and workflow.patched(PATCH_LIMITS):
            raise StepFailure(f"{self._path(step)}.with.until: {rec.wait_until.isoformat()} is further away than "
                              f"the limit of {limits.MAX_DURATION.days} days")
        rec.message = f"waiting until {rec.wait_until.isoformat()}"
        if remaining.total_seconds() > 0:
            await workflow.sleep(remaining)
        return WaitResult(waited_until=rec.wait_until).model_dump(mode="json")

    async def _builtin_approval(self, step: Step, step_type: StepType, args: Any) -> dict[str, Any]:
        from workflows.stepexec import validate_args

        rec = self._records[step.name]
        approval = validate_args(step_type, args, self._path(step))
        assert isinstance(approval, ApprovalArgs)
        if approval.requested_by is None and self._requested_by:
            approval = approval.model_copy(update={"requested_by": self._requested_by})
        self._approval_args[step.name] = approval
        who = ", ".join(approval.approvers) if approval.approvers else "anyone"
        rec.message = f"waiting for approval ({approval.quorum} needed, from {who}): {approval.message}"
        timeout = self._timeout(step, step_type)
        try:
            await workflow.wait_condition(lambda: self._decision(step.name) is not None, timeout=timeout)
        except TimeoutError:
            raise StepFailure(f"no decision within {timeout} ({self._approvals(step.name)} of "
                              f"{approval.quorum} approvals)") from None
        if self._decision(step.name) is False:
            rejection = next(v for v in rec.votes if not v.approve)
            raise StepFailure(f"rejected by {rejection.approver}" +
                              (f": {rejection.comment}" if rejection.comment else ""))
        approvers = [v.approver for v in rec.votes if v.approve]
        return ApprovalResult(approved=True, approvers=approvers,
                              comments=[v.comment for v in rec.votes if v.comment]).model_dump(mode="json")

    def _approvals(self, step: str) -> int:
        return sum(1 for v in self._records[step].votes if v.approve)

    def _decision(self, step: str) -> bool | None:
        rec = self._records[step]
        if any(not v.approve for v in rec.votes):
            return False
        args = self._approval_args.get(step)
        if args is not None and self._approvals(step) >= args.quorum:
            return True
        return None

    async def _builtin_subpipeline(self, step: Step, step_type: StepType, args: Any,
                                   index: int | None) -> dict[str, Any]:
        from definitions import queues
        from workflows.stepexec import child_search_attributes, validate_args

        sub = validate_args(step_type, args, self._path(step))
        assert isinstance(sub, SubPipelineArgs)
        suffix = step.name if index is None else f"{step.name}/{index}"
        child_id = f"{workflow.info().workflow_id}/{suffix}"
        # Pipelines that call each other through computed names (validation finds literal cycles)
        # would nest until the child id outgrows Temporal's 1,000 characters and fails forever.
        if self._depth + 1 > limits.MAX_PIPELINE_DEPTH:
            raise StepFailure(f"sub-pipeline {sub.pipeline!r} would run {self._depth + 1} levels deep, over the "
                              f"limit of {limits.MAX_PIPELINE_DEPTH}; do pipelines call each other in a cycle?")
        if len(child_id) > limits.MAX_WORKFLOW_ID_CHARS:
            raise StepFailure(f"the child workflow id would be {len(child_id)} characters, over Temporal's limit "
                              f"of {limits.MAX_WORKFLOW_ID_CHARS}; shorten the run id or nest fewer sub-pipelines")
        self._records[step.name].child_workflow_ids.append(child_id)
        try:
            result: PipelineResult = await workflow.execute_child_workflow(
                "PipelineWorkflow",
                PipelineRequest(pipeline=sub.pipeline, inputs=sub.inputs, requested_by=self._requested_by,
                                depth=self._depth + 1),
                id=child_id, task_queue=queues.PIPELINE, result_type=PipelineResult,
                search_attributes=child_search_attributes(self._invocation(step), step),
            )
        except ChildWorkflowError as exc:
            raise StepFailure(f"sub-pipeline {sub.pipeline!r} failed: {describe_failure(exc)}") from None
        return result.outputs

    # --- expressions -----------------------------------------------------------------------------

    def _referenced_steps(self, step: Step) -> set[str] | None:
        """Steps whose outputs a step's expressions read (None: a computed name, give all)."""
        from definitions.expressions import iter_templates

        exprs = [e for _, e in iter_templates(step.with_, "with")]
        exprs += [e for e in (step.when, step.for_each) if isinstance(e, str)]
        exprs += list(step.outputs.values())
        return self._steps_read_by(exprs)

    def _output_refs(self) -> set[str] | None:
        assert self._pipeline is not None
        return self._steps_read_by(list(self._pipeline.spec.outputs.values()))

    @staticmethod
    def _steps_read_by(exprs: list[str]) -> set[str] | None:
        names: set[str] = set()
        for expr in exprs:
            try:
                refs = references(expr)
            except ExpressionError:
                continue
            for ref in refs:
                if ref.chain[0] == "steps":
                    if len(ref.chain) < 2 or ref.chain[1] is None:
                        return None
                    names.add(ref.chain[1])
        return names

    def _task_budget(self) -> CostBudget:
        """One CEL cost budget per workflow task (keyed by the history length, which every replay of
        that task sees too, so the same evaluations exhaust it), bounding the task's CPU time."""
        task = workflow.info().get_current_history_length()
        if task != self._budget_task:
            self._budget_task, self._budget = task, CostBudget(limits.MAX_CEL_COST_PER_TASK)
        return self._budget

    def _scope(self, step: Step | None) -> Scope:
        return Scope(self._context(step), budget=self._task_budget())

    def _context(self, step: Step | None) -> dict[str, Any]:
        wanted = self._step_refs.get(step.name) if step is not None else None
        steps = {
            name: {"outputs": rec.outputs, "status": rec.state.value}
            for name, rec in self._records.items()
            if (wanted is None or name in wanted) and rec.state.terminal
        }
        return {"inputs": self._inputs, "steps": steps,
                "pipeline": {"name": self._pipeline_name, "id": workflow.info().workflow_id}}

    # --- result, queries, updates ----------------------------------------------------------------

    def _finish(self) -> PipelineResult:
        assert self._pipeline is not None
        failed = [r for r in self._records.values() if r.state is StepState.FAILED and not r.ignored_failure]
        if failed:
            cancelled = [r.name for r in self._records.values() if r.state is StepState.CANCELLED]
            lines = [f"step {r.name!r} ({r.uses}) failed: {r.error}" for r in failed]
            if cancelled:
                lines.append(f"not run because of it: {', '.join(cancelled)}")
            message = clip(f"pipeline {self._pipeline_name!r} failed: " + "; ".join(lines), 8000)
            self._fail_run(message)
            status = self.status().model_dump(mode="json")
            details = [status] if limits.json_size(status) <= limits.MAX_STEP_OUTPUT_BYTES else []
            raise ApplicationError(message, *details, type="PipelineFailed", non_retryable=True)
        outputs: dict[str, Any] = {}
        ctx = self._scope(None)
        for key, expr in self._pipeline.spec.outputs.items():
            try:
                outputs[key] = evaluate(expr, ctx)
            except ExpressionError as exc:
                message = f"spec.outputs.{key}: {exc}"
                self._fail_run(message)
                raise ApplicationError(message, type="InvalidOutputs", non_retryable=True) from None
        result = PipelineResult(pipeline=self._pipeline_name, state=RunState.SUCCEEDED, outputs=outputs,
                                steps=self.status().steps, generation=self._generation)
        size = limits.json_size(result.model_dump(mode="json"))
        if size > limits.MAX_CONTINUATION_BYTES and workflow.patched(PATCH_LIMITS):
            message = (f"pipeline {self._pipeline_name!r}: its result is {size} bytes, over the limit of "
                       f"{limits.size_text(limits.MAX_CONTINUATION_BYTES)}; make spec.outputs smaller")
            self._fail_run(message)
            raise ApplicationError(message, type="LimitExceeded", non_retryable=True)
        self._state = RunState.SUCCEEDED
        return result

    @workflow.query
    def status(self) -> PipelineStatus:
        steps = [StepStatus(**rec.model_dump(exclude={"outputs", "ignored_failure", "wait_until"}))
                 for rec in self._records.values()]
        return PipelineStatus(pipeline=self._pipeline_name, workflow_id=workflow.info().workflow_id,
                              state=self._state, generation=self._generation, steps=steps, error=self._error)

    @workflow.query
    def outputs(self, step: str) -> Any:
        """One step's outputs (kept out of `status` because they can be large)."""
        rec = self._records.get(step)
        return rec.outputs if rec else None

    @workflow.update
    def approve(self, decision: ApprovalDecision) -> ApprovalState:
        rec = self._records[decision.step]
        rec.votes.append(ApprovalVote(approver=decision.approver, approve=decision.approve,
                                      comment=decision.comment, at=workflow.now()))
        args = self._approval_args[decision.step]
        verdict = self._decision(decision.step)
        return ApprovalState(step=decision.step, approvals=self._approvals(decision.step), needed=args.quorum,
                             decided=verdict is not None, approved=verdict)

    @approve.validator
    def _validate_approve(self, decision: ApprovalDecision) -> None:
        rec = self._records.get(decision.step)
        if rec is None:
            raise ValueError(f"no step named {decision.step!r} in pipeline {self._pipeline_name!r}")
        args = self._approval_args.get(decision.step)
        if args is None or rec.state is not StepState.WAITING or self._decision(decision.step) is not None:
            raise ValueError(f"step {decision.step!r} is not waiting for approval (state: {rec.state.value})")
        if args.approvers and decision.approver not in args.approvers:
            raise ValueError(f"{decision.approver!r} may not approve {decision.step!r}; eligible: "
                             f"{', '.join(args.approvers)}")
        if args.requested_by and decision.approver == args.requested_by:
            raise ValueError(f"{decision.approver!r} started this run and cannot approve it (four-eyes rule)")
        if any(v.approver == decision.approver for v in rec.votes):
            raise ValueError(f"{decision.approver!r} has already voted on {decision.step!r}")
