"""``PromotionStepWorkflow``: the ``promotion.run`` pipeline step."""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ApplicationError

from definitions import queues
from definitions.promotion import PromotionResult, PromotionRunArgs, RingResult, promotion_workflow_id
from definitions.promotion_runs import PromotionOutcome, PromotionRequest, RunState
from workflows.promotion.ring import PromotionWorkflow


@workflow.defn
class PromotionStepWorkflow:
    """The ``promotion.run`` step: the promotion as a child with the deterministic id; fails unless it
    succeeded, so the pipeline stops on a failed, rolled back or superseded promotion."""

    @workflow.run
    async def run(self, args: PromotionRunArgs) -> PromotionResult:
        name = args.promotion.name
        out: PromotionOutcome = await workflow.execute_child_workflow(
            PromotionWorkflow.run,
            PromotionRequest(
                promotion=args.promotion,
                version=args.version,
                requested_by=args.requested_by,
                override_reason=args.override_reason,
            ),
            id=promotion_workflow_id(name, args.version),
            task_queue=queues.KONFIDENCE,
        )
        st = out.status
        result = PromotionResult(
            pipeline=name,
            version=args.version,
            sequence=st.sequence,
            state=st.state.value,
            workflow_id=st.workflow_id,
            message=st.message,
            rings=[RingResult(ring=r.ring, state=r.state.value, attempts=r.attempt) for r in st.rings],
        )
        if st.state is not RunState.SUCCEEDED:
            raise ApplicationError(
                f"promotion of {args.version} ended {st.state.value}: {st.message}",
                result.model_dump(mode="json"),
                type="PromotionNotSucceeded",
                non_retryable=True,
            )
        return result
